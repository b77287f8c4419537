//! Text as offices save it: UTF-8 (with or without a BOM), or GBK/GB18030, which Excel and WPS
//! on Chinese Windows write when a sheet is saved as CSV. Files are decoded once, here, so every
//! reader of forms and imports accepts both. [`print_out`] writes what the command lines print.

/// How a file's bytes were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    Utf8,
    /// GB18030 (a superset of GBK and GB2312).
    Gb18030,
}

impl TextEncoding {
    /// The encoding's usual name.
    pub fn name(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "UTF-8",
            TextEncoding::Gb18030 => "GBK/GB18030",
        }
    }
}

/// Why bytes are not text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "文件既不是 UTF-8 也不是 GBK 编码的文本（第 {offset} 字节起无法识别）；请在 Excel/WPS 中另存为“CSV UTF-8”或“CSV（逗号分隔）” (neither UTF-8 nor GBK text from byte {offset})"
)]
pub struct TextError {
    pub offset: usize,
}

/// Decodes a file's bytes: UTF-8 (a BOM is dropped) when they are valid UTF-8, otherwise
/// GB18030. Bytes that are neither (a binary file, say) are refused.
pub fn decode(bytes: &[u8]) -> Result<(String, TextEncoding), TextError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok((s.to_owned(), TextEncoding::Utf8)),
        Err(utf8) => {
            let refused = TextError {
                offset: utf8.valid_up_to(),
            };
            let Some(text) =
                encoding_rs::GB18030.decode_without_bom_handling_and_without_replacement(bytes)
            else {
                return Err(refused);
            };
            // NUL bytes are no office's text: a binary file that happens to decode
            if text.contains('\0') {
                return Err(refused);
            }
            Ok((text.into_owned(), TextEncoding::Gb18030))
        }
    }
}

/// Writes `text` to standard output; a reader that went away (`pingan-node status | head`)
/// ends the output quietly instead of panicking.
pub fn print_out(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => eprintln!("writing standard output: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_with_and_without_bom_and_gbk_from_excel() {
        assert_eq!(
            decode("指标,数值\n".as_bytes()).unwrap(),
            ("指标,数值\n".into(), TextEncoding::Utf8)
        );
        assert_eq!(
            decode(b"\xef\xbb\xbfmetric,value\n").unwrap().0,
            "metric,value\n"
        );
        // 指标,数值 as Excel on Chinese Windows saves it
        let (gbk, _, _) = encoding_rs::GBK.encode("指标,数值\n调处矛盾纠纷,5\n");
        assert!(std::str::from_utf8(&gbk).is_err());
        assert_eq!(
            decode(&gbk).unwrap(),
            ("指标,数值\n调处矛盾纠纷,5\n".into(), TextEncoding::Gb18030)
        );
        let e = decode(b"PK\x03\x04\x00\x00\xff\xfe").unwrap_err();
        assert!(e.to_string().contains("UTF-8"), "{e}");
    }
}
