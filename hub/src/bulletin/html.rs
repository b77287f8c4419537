//! The bulletin as a print-ready HTML page (A4, 公文 fonts where installed, the charts inline):
//! the same blocks as the .docx.

use super::{Block, Bulletin};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(T[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

const STYLE: &str = r#"
@page { size: A4; margin: 37mm 26mm 35mm 28mm; }
body { font-family: "仿宋_GB2312", "FangSong", "STFangsong", "Noto Serif CJK SC", "WenQuanYi Micro Hei", serif; font-size: 16pt; line-height: 1.75; color: #000; max-width: 170mm; margin: 1.5rem auto; }
h1 { font-family: "方正小标宋简体", "SimSun", "Noto Serif CJK SC", "WenQuanYi Micro Hei", serif; font-size: 22pt; font-weight: normal; text-align: center; margin: 0 0 .3em; color: #b00; }
.number { text-align: center; font-size: 12pt; border-bottom: 2px solid #b00; padding-bottom: .4em; margin-bottom: .8em; }
.status { font-size: 12pt; color: #8a4b00; margin: .2em 0; }
h2 { font-family: "黑体", "SimHei", "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif; font-size: 16pt; font-weight: normal; margin: .8em 0 .2em; }
p { text-indent: 2em; margin: .2em 0; text-align: justify; }
.caption { text-indent: 0; text-align: center; font-family: "黑体", "SimHei", "WenQuanYi Micro Hei", sans-serif; font-size: 12pt; margin: .6em 0 .2em; }
table { border-collapse: collapse; width: 100%; font-size: 10.5pt; line-height: 1.4; page-break-inside: auto; }
th, td { border: 1px solid #000; padding: 2px 4px; text-align: center; }
th { font-family: "黑体", "SimHei", "WenQuanYi Micro Hei", sans-serif; font-weight: normal; }
tr { page-break-inside: avoid; }
img { display: block; width: 100%; margin: .4em auto 0; }
@media print { body { margin: 0; } }
"#;

/// The bulletin as an HTML page.
pub fn html(b: &Bulletin) -> String {
    let mut out = format!(
        r#"<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{}</title><style>{STYLE}</style></head><body>
<h1 id="bulletin-title">{}</h1><div class="number">{}</div>"#,
        esc(&b.title),
        esc(&b.title),
        esc(&b.number)
    );
    for s in &b.status {
        out.push_str(&format!(r#"<div class="status">{}</div>"#, esc(s)));
    }
    for block in &b.blocks {
        match block {
            Block::Heading(h) => out.push_str(&format!("<h2>{}</h2>", esc(h))),
            Block::Para(p) => out.push_str(&format!("<p>{}</p>", esc(p))),
            Block::Table(t) => {
                out.push_str(&format!(
                    r#"<p class="caption">{}</p><table><thead><tr>"#,
                    esc(&t.caption)
                ));
                for h in &t.header {
                    out.push_str(&format!("<th>{}</th>", esc(h)));
                }
                out.push_str("</tr></thead><tbody>");
                for r in &t.rows {
                    out.push_str("<tr>");
                    for c in r {
                        out.push_str(&format!("<td>{}</td>", esc(c)));
                    }
                    out.push_str("</tr>");
                }
                out.push_str("</tbody></table>");
            }
            Block::Chart { caption, png } => out.push_str(&format!(
                r#"<img alt="{}" src="data:image/png;base64,{}"><p class="caption">{}</p>"#,
                esc(caption),
                base64(png),
                esc(caption)
            )),
        }
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_as_rfc_4648_says() {
        assert_eq!(super::base64(b""), "");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foobar"), "Zm9vYmFy");
    }
}
