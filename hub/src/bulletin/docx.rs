//! The bulletin as an editable Word document (.docx, WordprocessingML), as Word and WPS open it:
//! the Chinese fonts of 公文 declared for East Asian text (仿宋_GB2312 for the body, 黑体 for the
//! headings, 方正小标宋简体 falling back to 宋体 for the title), A4 with 公文 margins, tables with
//! borders, and the charts as PNG pictures.

use std::io::Write as _;

use zip::write::SimpleFileOptions;

use super::{Block, Bulletin, TableBlock};

/// XML text, escaped.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A run of text in a font (East Asian and Latin), bold or not, at `half_points`.
fn run(text: &str, east_asian: &str, half_points: u32, bold: bool) -> String {
    format!(
        r#"<w:r><w:rPr><w:rFonts w:ascii="Times New Roman" w:hAnsi="Times New Roman" w:eastAsia="{east_asian}" w:cs="Times New Roman"/>{}<w:sz w:val="{half_points}"/><w:szCs w:val="{half_points}"/></w:rPr><w:t xml:space="preserve">{}</w:t></w:r>"#,
        if bold { "<w:b/>" } else { "" },
        esc(text)
    )
}

fn para(text: &str, style: &str, justify: &str, indent: bool) -> String {
    let (font, size, bold) = match style {
        "Title" => ("方正小标宋简体", 44, false),
        "Heading1" => ("黑体", 32, false),
        "Caption" => ("黑体", 24, false),
        "Small" => ("仿宋_GB2312", 24, false),
        _ => ("仿宋_GB2312", 32, false),
    };
    format!(
        r#"<w:p><w:pPr><w:pStyle w:val="{style}"/><w:jc w:val="{justify}"/>{}</w:pPr>{}</w:p>"#,
        if indent {
            r#"<w:ind w:firstLineChars="200" w:firstLine="640"/>"#
        } else {
            ""
        },
        run(text, font, size, bold)
    )
}

fn table(t: &TableBlock) -> String {
    let cell = |text: &str, header: bool| {
        format!(
            r#"<w:tc><w:tcPr><w:tcW w:w="0" w:type="auto"/></w:tcPr><w:p><w:pPr><w:jc w:val="center"/><w:spacing w:before="0" w:after="0"/></w:pPr>{}</w:p></w:tc>"#,
            run(text, if header { "黑体" } else { "仿宋_GB2312" }, 21, false)
        )
    };
    let border =
        |side: &str| format!(r#"<w:{side} w:val="single" w:sz="4" w:space="0" w:color="000000"/>"#);
    let mut out = para(&t.caption, "Caption", "center", false);
    out.push_str(&format!(
        r#"<w:tbl><w:tblPr><w:tblStyle w:val="TableGrid"/><w:tblW w:w="5000" w:type="pct"/><w:jc w:val="center"/><w:tblBorders>{}{}{}{}{}{}</w:tblBorders></w:tblPr>"#,
        border("top"),
        border("left"),
        border("bottom"),
        border("right"),
        border("insideH"),
        border("insideV")
    ));
    out.push_str(r#"<w:tr><w:trPr><w:tblHeader/></w:trPr>"#);
    for h in &t.header {
        out.push_str(&cell(h, true));
    }
    out.push_str("</w:tr>");
    for r in &t.rows {
        out.push_str("<w:tr>");
        for c in r {
            out.push_str(&cell(c, false));
        }
        out.push_str("</w:tr>");
    }
    out.push_str("</w:tbl>");
    out
}

/// An inline picture: 16 cm wide, height to scale.
fn picture(rel: &str, n: usize, width_px: u32, height_px: u32) -> String {
    let cx: u64 = 5_760_000; // 16 cm in EMU
    let cy = cx * u64::from(height_px) / u64::from(width_px.max(1));
    format!(
        r#"<w:p><w:pPr><w:jc w:val="center"/></w:pPr><w:r><w:drawing><wp:inline distT="0" distB="0" distL="0" distR="0"><wp:extent cx="{cx}" cy="{cy}"/><wp:docPr id="{n}" name="图{n}"/><a:graphic xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/picture"><pic:pic xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture"><pic:nvPicPr><pic:cNvPr id="{n}" name="chart{n}.png"/><pic:cNvPicPr/></pic:nvPicPr><pic:blipFill><a:blip r:embed="{rel}"/><a:stretch><a:fillRect/></a:stretch></pic:blipFill><pic:spPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="{cx}" cy="{cy}"/></a:xfrm><a:prstGeom prst="rect"><a:avLst/></a:prstGeom></pic:spPr></pic:pic></a:graphicData></a:graphic></wp:inline></w:drawing></w:r></w:p>"#
    )
}

const STYLES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:styles xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">
<w:docDefaults><w:rPrDefault><w:rPr><w:rFonts w:ascii="Times New Roman" w:hAnsi="Times New Roman" w:eastAsia="仿宋_GB2312" w:cs="Times New Roman"/><w:sz w:val="32"/><w:szCs w:val="32"/><w:lang w:val="en-US" w:eastAsia="zh-CN"/></w:rPr></w:rPrDefault><w:pPrDefault><w:pPr><w:spacing w:line="560" w:lineRule="exact"/></w:pPr></w:pPrDefault></w:docDefaults>
<w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/></w:style>
<w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/><w:basedOn w:val="Normal"/><w:pPr><w:spacing w:before="240" w:after="240" w:line="700" w:lineRule="exact"/><w:jc w:val="center"/></w:pPr><w:rPr><w:rFonts w:eastAsia="方正小标宋简体"/><w:sz w:val="44"/></w:rPr></w:style>
<w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/><w:basedOn w:val="Normal"/><w:pPr><w:outlineLvl w:val="0"/></w:pPr><w:rPr><w:rFonts w:eastAsia="黑体"/></w:rPr></w:style>
<w:style w:type="paragraph" w:styleId="Caption"><w:name w:val="caption"/><w:basedOn w:val="Normal"/><w:pPr><w:spacing w:before="120" w:after="60" w:line="360" w:lineRule="auto"/></w:pPr><w:rPr><w:rFonts w:eastAsia="黑体"/><w:sz w:val="24"/></w:rPr></w:style>
<w:style w:type="paragraph" w:styleId="Small"><w:name w:val="Small"/><w:basedOn w:val="Normal"/><w:rPr><w:sz w:val="24"/></w:rPr></w:style>
<w:style w:type="table" w:styleId="TableGrid"><w:name w:val="Table Grid"/><w:tblPr><w:tblCellMar><w:left w:w="80" w:type="dxa"/><w:right w:w="80" w:type="dxa"/></w:tblCellMar></w:tblPr></w:style>
</w:styles>"#;

const FONT_TABLE: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:fonts xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">
<w:font w:name="仿宋_GB2312"><w:altName w:val="仿宋"/><w:charset w:val="86"/><w:family w:val="modern"/></w:font>
<w:font w:name="黑体"><w:altName w:val="SimHei"/><w:charset w:val="86"/><w:family w:val="modern"/></w:font>
<w:font w:name="方正小标宋简体"><w:altName w:val="宋体"/><w:charset w:val="86"/><w:family w:val="script"/></w:font>
<w:font w:name="宋体"><w:altName w:val="SimSun"/><w:charset w:val="86"/><w:family w:val="auto"/></w:font>
<w:font w:name="Times New Roman"><w:charset w:val="00"/><w:family w:val="roman"/></w:font>
</w:fonts>"#;

/// PNG width and height from its header.
fn png_size(png: &[u8]) -> (u32, u32) {
    let read = |at: usize| {
        png.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(1, u32::from_be_bytes)
    };
    (read(16), read(20))
}

/// The bulletin as .docx bytes.
pub fn docx(b: &Bulletin) -> std::io::Result<Vec<u8>> {
    let mut body = String::new();
    body.push_str(&para(&b.title, "Title", "center", false));
    body.push_str(&para(&b.number, "Small", "center", false));
    for s in &b.status {
        body.push_str(&para(s, "Small", "left", false));
    }
    let mut images = Vec::new();
    for block in &b.blocks {
        match block {
            Block::Heading(h) => body.push_str(&para(h, "Heading1", "left", true)),
            Block::Para(p) => body.push_str(&para(p, "Normal", "both", true)),
            Block::Table(t) => body.push_str(&table(t)),
            Block::Chart { caption, png } => {
                images.push(png.clone());
                let n = images.len();
                let (w, h) = png_size(png);
                body.push_str(&picture(&format!("rIdImg{n}"), n, w, h));
                body.push_str(&para(caption, "Caption", "center", false));
            }
        }
    }
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture"><w:body>{body}<w:sectPr><w:pgSz w:w="11906" w:h="16838"/><w:pgMar w:top="2098" w:right="1474" w:bottom="1984" w:left="1588" w:header="851" w:footer="992" w:gutter="0"/></w:sectPr></w:body></w:document>"#
    );
    let mut rels = String::from(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rIdStyles" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/><Relationship Id="rIdFonts" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/fontTable" Target="fontTable.xml"/>"#,
    );
    for n in 1..=images.len() {
        rels.push_str(&format!(
            r#"<Relationship Id="rIdImg{n}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/image" Target="media/chart{n}.png"/>"#
        ));
    }
    rels.push_str("</Relationships>");
    let content_types = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Default Extension="png" ContentType="image/png"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/><Override PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/><Override PartName="/word/fontTable.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.fontTable+xml"/><Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/></Types>"#;
    let package_rels = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/></Relationships>"#;
    let core = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{}</dc:title><dc:creator>pingan</dc:creator><dc:language>zh-CN</dc:language></cp:coreProperties>"#,
        esc(&b.title)
    );
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut put = |name: &str, bytes: &[u8]| -> std::io::Result<()> {
        zip.start_file(name, options)
            .map_err(std::io::Error::other)?;
        zip.write_all(bytes)
    };
    put("[Content_Types].xml", content_types.as_bytes())?;
    put("_rels/.rels", package_rels.as_bytes())?;
    put("docProps/core.xml", core.as_bytes())?;
    put("word/document.xml", document.as_bytes())?;
    put("word/styles.xml", STYLES.as_bytes())?;
    put("word/fontTable.xml", FONT_TABLE.as_bytes())?;
    put("word/_rels/document.xml.rels", rels.as_bytes())?;
    for (i, png) in images.iter().enumerate() {
        put(&format!("word/media/chart{}.png", i + 1), png)?;
    }
    Ok(zip.finish().map_err(std::io::Error::other)?.into_inner())
}
