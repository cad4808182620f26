//! Decides a document's character encoding and turns it into UTF-8, before parsing. No I/O.
//!
//! The order is RFC 7303's, with what browsers and feed readers learned since:
//! 1. a byte order mark (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE) wins;
//! 2. else the HTTP `charset` parameter;
//! 3. else the XML declaration's `encoding` (or, with no declaration, UTF-16/32 recognised
//!    from how `<?` is laid out in bytes);
//! 4. else UTF-8.
//!
//! Labels are read the WHATWG way (encoding_rs), so `ISO-8859-1` and `US-ASCII` mean
//! windows-1252, as in every browser. When a document that was not explicitly labelled
//! (no BOM, no HTTP charset) does not decode as what it declares or defaults to, and that
//! was UTF-8, it is read as windows-1252 instead: the usual real-world mistake. The XML
//! declaration is rewritten to say UTF-8 so the parser does not decode a second time.

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252};

/// A document in UTF-8, with a note when decoding needed a guess.
#[derive(Debug)]
pub struct Decoded<'a> {
    pub text: Cow<'a, str>,
    /// The encoding used, by its WHATWG name (UTF-32 by its own).
    pub encoding: &'static str,
    pub warning: Option<String>,
}

/// Decodes `bytes` given the HTTP Content-Type, if any. See the module docs.
pub fn decode<'a>(bytes: &'a [u8], content_type: Option<&str>) -> Decoded<'a> {
    // 1. Byte order marks, UTF-32 first (its LE mark starts like UTF-16's).
    if let Some(text) = utf32_with_bom(bytes) {
        return declared_utf8(Cow::Owned(text), "UTF-32", None);
    }
    if let Some((enc, len)) = Encoding::for_bom(bytes) {
        let (text, _) = enc.decode_without_bom_handling(&bytes[len..]);
        return declared_utf8(text, enc.name(), None);
    }
    // 2. The HTTP charset.
    if let Some(label) = content_type.and_then(charset_param) {
        match Encoding::for_label(label.as_bytes()) {
            Some(enc) => {
                let enc = xml_compatible(enc, bytes);
                let (text, had_errors) = enc.decode_without_bom_handling(bytes);
                if !(had_errors && enc == UTF_8) {
                    return declared_utf8(text, enc.name(), None);
                }
                // Servers label everything UTF-8 by default; when the bytes say otherwise,
                // the document's own declaration (or windows-1252) is the better guess.
                let mut d = from_document(bytes);
                if d.encoding != UTF_8.name() || d.warning.is_some() {
                    d.warning = Some(format!(
                        "the Content-Type says charset={label}, but the body is not valid UTF-8: read as {}",
                        d.encoding
                    ));
                }
                return d;
            }
            None => {
                // An unknown charset is ignored, as browsers do; say so.
                let mut d = from_document(bytes);
                d.warning = Some(format!(
                    "unknown charset \"{label}\" in the Content-Type; {}",
                    d.warning
                        .take()
                        .unwrap_or_else(|| format!("read as {}", d.encoding))
                ));
                return d;
            }
        }
    }
    from_document(bytes)
}

/// Decodes an HTML page as a browser does (WHATWG's encoding sniffing): a byte order mark,
/// else the HTTP charset, else a `<meta charset>` (or `http-equiv` Content-Type) in the
/// first 1024 bytes, else UTF-8 when the bytes are valid UTF-8, else a guess from the bytes
/// (chardetng, Firefox's detector). A page labelled UTF-8 whose bytes are not is guessed
/// too, with a warning (a browser would show replacement characters).
pub fn decode_html<'a>(bytes: &'a [u8], content_type: Option<&str>) -> Decoded<'a> {
    decode_page(bytes, content_type, true)
}

/// A JSON document decoded as [`decode_html`] decodes a page, but without looking for a
/// `<meta>` (which a JSON string could hold): a byte order mark, the HTTP charset, UTF-8,
/// else a guess.
pub fn decode_json<'a>(bytes: &'a [u8], content_type: Option<&str>) -> Decoded<'a> {
    decode_page(bytes, content_type, false)
}

fn decode_page<'a>(bytes: &'a [u8], content_type: Option<&str>, sniff_meta: bool) -> Decoded<'a> {
    if let Some((enc, len)) = Encoding::for_bom(bytes) {
        let (text, _) = enc.decode_without_bom_handling(&bytes[len..]);
        return Decoded {
            text,
            encoding: enc.name(),
            warning: None,
        };
    }
    let (label, from_meta) = match content_type.and_then(charset_param) {
        Some(l) => (Some(l), false),
        None if sniff_meta => (meta_charset(&bytes[..bytes.len().min(1024)]), true),
        None => (None, false),
    };
    let declared = label
        .as_deref()
        .and_then(|l| Encoding::for_label(l.trim().as_bytes()))
        .map(|e| match e {
            // WHATWG's prescan: a page cannot say it is UTF-16 (it would need a BOM), and
            // x-user-defined in a page means windows-1252.
            e if from_meta && (e == UTF_16LE || e == UTF_16BE) => UTF_8,
            e if from_meta && e == encoding_rs::X_USER_DEFINED => WINDOWS_1252,
            e => e,
        });
    let mut warning = match (&label, declared) {
        (Some(l), None) => Some(format!("unknown charset \"{l}\" declared")),
        _ => None,
    };
    if declared == Some(encoding_rs::REPLACEMENT) {
        // ISO-2022-KR and the like: browsers show one replacement character for the page.
        return Decoded {
            text: Cow::Borrowed(""),
            encoding: encoding_rs::REPLACEMENT.name(),
            warning: Some(format!(
                "the page declares charset \"{}\", which no browser decodes",
                label.unwrap_or_default()
            )),
        };
    }
    if let Some(enc) = declared {
        let (text, had_errors) = enc.decode_without_bom_handling(bytes);
        if !(had_errors && enc == UTF_8) {
            return Decoded {
                text,
                encoding: enc.name(),
                warning,
            };
        }
        warning = Some(format!(
            "declared {}, but not valid UTF-8",
            label.as_deref().unwrap_or("UTF-8")
        ));
    } else if let Ok(text) = std::str::from_utf8(bytes) {
        return Decoded {
            text: Cow::Borrowed(text),
            encoding: UTF_8.name(),
            warning,
        };
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    let enc = detector.guess(None, chardetng::Utf8Detection::Deny);
    let (text, _) = enc.decode_without_bom_handling(bytes);
    Decoded {
        text,
        encoding: enc.name(),
        warning: Some(format!(
            "{}: read as {} (a guess)",
            warning.unwrap_or_else(|| "no charset declared, and not valid UTF-8".into()),
            enc.name()
        )),
    }
}

/// The charset a `<meta charset=...>` or `<meta http-equiv="Content-Type"
/// content="...; charset=...">` names, in `head` (the first 1024 bytes of a page).
fn meta_charset(head: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("<meta") {
        let tag_end = rest[at..].find('>').map_or(rest.len(), |e| at + e);
        let tag = &rest[at..tag_end];
        if let Some(c) = tag.find("charset") {
            let value = tag[c + "charset".len()..].trim_start();
            if let Some(value) = value.strip_prefix('=') {
                let value = value.trim_start().trim_start_matches(['"', '\'']);
                let end = value
                    .find(|c: char| {
                        !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
                    })
                    .unwrap_or(value.len());
                if end > 0 {
                    return Some(value[..end].to_string());
                }
            }
        }
        rest = &rest[tag_end..];
    }
    None
}

/// Steps 3 and 4: the document's own declaration, else UTF-8.
fn from_document(bytes: &[u8]) -> Decoded<'_> {
    if let Some(text) = utf32_without_bom(bytes) {
        return declared_utf8(Cow::Owned(text), "UTF-32", None);
    }
    // `<?` laid out as UTF-16 with no BOM.
    if bytes.starts_with(&[b'<', 0, b'?', 0]) {
        return declared_utf8(
            UTF_16LE.decode_without_bom_handling(bytes).0,
            "UTF-16LE",
            None,
        );
    }
    if bytes.starts_with(&[0, b'<', 0, b'?']) {
        return declared_utf8(
            UTF_16BE.decode_without_bom_handling(bytes).0,
            "UTF-16BE",
            None,
        );
    }
    let declared = xml_declared_encoding(bytes);
    let enc = declared
        .as_deref()
        .and_then(|l| Encoding::for_label(l.as_bytes()))
        .map(|e| xml_compatible(e, bytes))
        .unwrap_or(UTF_8);
    let (text, had_errors) = enc.decode_without_bom_handling(bytes);
    if had_errors && enc == UTF_8 {
        let (text, _) = WINDOWS_1252.decode_without_bom_handling(bytes);
        let said = match &declared {
            Some(l) => format!("declared {l}"),
            None => "no encoding declared".into(),
        };
        return declared_utf8(
            text,
            WINDOWS_1252.name(),
            Some(format!("{said}, but not valid UTF-8: read as windows-1252")),
        );
    }
    let warning = match &declared {
        Some(l) if Encoding::for_label(l.as_bytes()).is_none() => {
            Some(format!("unknown encoding \"{l}\" declared: read as UTF-8"))
        }
        _ => None,
    };
    declared_utf8(text, enc.name(), warning)
}

/// A declaration of UTF-16 in a document that is plainly 8-bit (it was transcoded on the way)
/// is a lie; encoding_rs never decodes to UTF-16 from a label in an ASCII-compatible stream
/// either. Keep what the bytes can be.
fn xml_compatible(enc: &'static Encoding, bytes: &[u8]) -> &'static Encoding {
    if (enc == UTF_16LE || enc == UTF_16BE) && !bytes.contains(&0) {
        UTF_8
    } else {
        enc
    }
}

/// The text, with its XML declaration (if any) now saying UTF-8.
fn declared_utf8<'a>(
    text: Cow<'a, str>,
    encoding: &'static str,
    warning: Option<String>,
) -> Decoded<'a> {
    let text = match rewrite_declaration(&text) {
        Some(rewritten) => Cow::Owned(rewritten),
        None => text,
    };
    Decoded {
        text,
        encoding,
        warning,
    }
}

fn rewrite_declaration(text: &str) -> Option<String> {
    // Already UTF-8 (the common case): no copy.
    if xml_declared_encoding(text.as_bytes())
        .is_none_or(|l| Encoding::for_label(l.as_bytes()) == Some(UTF_8))
    {
        return None;
    }
    let trimmed = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    let offset = text.len() - trimmed.len();
    if !trimmed.starts_with("<?xml") {
        return None;
    }
    let end = trimmed.find("?>")?;
    let decl = &trimmed[..end];
    let at = decl.find("encoding")?;
    let rest = &decl[at + "encoding".len()..];
    let eq = rest.find('=')?;
    let after_eq = &rest[eq + 1..];
    let quote_at = after_eq.find(['"', '\''])?;
    let quote = after_eq[quote_at..].chars().next()?;
    let value_start = quote_at + 1;
    let value_len = after_eq[value_start..].find(quote)?;
    let start = offset + at + "encoding".len() + eq + 1 + value_start;
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..start]);
    out.push_str("UTF-8");
    out.push_str(&text[start + value_len..]);
    Some(out)
}

/// The `encoding` of an XML declaration in an ASCII-compatible document.
fn xml_declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(1024)];
    let head = String::from_utf8_lossy(head);
    let trimmed = head.trim_start();
    if !trimmed.starts_with("<?xml") {
        return None;
    }
    let decl = &trimmed[..trimmed.find("?>")?];
    let rest = &decl[decl.find("encoding")? + "encoding".len()..];
    let rest = rest.trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    Some(value[..value.find(quote)?].trim().to_string())
}

/// The `charset` parameter of a Content-Type (any case), unquoted; `None` when absent or
/// empty.
pub(crate) fn charset_param(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("charset"))
            .then(|| v.trim().trim_matches('"').trim().to_string())
            .filter(|v| !v.is_empty())
    })
}

fn utf32_with_bom(bytes: &[u8]) -> Option<String> {
    if bytes.starts_with(&[0xFF, 0xFE, 0, 0]) {
        utf32(&bytes[4..], false)
    } else if bytes.starts_with(&[0, 0, 0xFE, 0xFF]) {
        utf32(&bytes[4..], true)
    } else {
        None
    }
}

fn utf32_without_bom(bytes: &[u8]) -> Option<String> {
    if bytes.starts_with(&[b'<', 0, 0, 0]) {
        utf32(bytes, false)
    } else if bytes.starts_with(&[0, 0, 0, b'<']) {
        utf32(bytes, true)
    } else {
        None
    }
}

/// UTF-32 (encoding_rs, being WHATWG's, has no UTF-32); invalid code points become U+FFFD.
fn utf32(bytes: &[u8], big_endian: bool) -> Option<String> {
    let mut out = String::with_capacity(bytes.len() / 4);
    for chunk in bytes.chunks(4) {
        let arr: [u8; 4] = chunk.try_into().ok()?;
        let n = if big_endian {
            u32::from_be_bytes(arr)
        } else {
            u32::from_le_bytes(arr)
        };
        out.push(char::from_u32(n).unwrap_or('\u{fffd}'));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(s: &str, bom: bool) -> Vec<u8> {
        let mut v = if bom { vec![0xFF, 0xFE] } else { vec![] };
        v.extend(s.encode_utf16().flat_map(|u| u.to_le_bytes()));
        v
    }

    #[test]
    fn bom_wins_over_everything() {
        let doc = utf16le(
            "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?><a>é</a>",
            true,
        );
        let d = decode(&doc, Some("text/xml; charset=koi8-r"));
        assert_eq!(d.text, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a>é</a>");
        assert_eq!(d.encoding, "UTF-16LE");
    }

    #[test]
    fn http_charset_beats_the_declaration() {
        let doc = b"<?xml version='1.0' encoding='utf-8'?><a>\xe9</a>";
        let d = decode(doc, Some("application/xml; charset=\"ISO-8859-1\""));
        // The declaration already says UTF-8, which the decoded text now is.
        assert_eq!(d.text, "<?xml version='1.0' encoding='utf-8'?><a>é</a>");
        assert_eq!(d.encoding, "windows-1252");
    }

    #[test]
    fn a_false_utf8_label_yields_to_the_bytes() {
        let doc = b"<?xml version='1.0' encoding='iso-8859-1'?><a>\xe9</a>";
        let d = decode(doc, Some("text/xml; charset=utf-8"));
        assert_eq!(d.text, "<?xml version='1.0' encoding='UTF-8'?><a>é</a>");
        assert!(d.warning.expect("warned").contains("not valid UTF-8"));
    }

    #[test]
    fn latin1_means_windows_1252() {
        // 0x93/0x94 are curly quotes in windows-1252, control codes in ISO-8859-1.
        let d = decode(
            b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>\x93hi\x94</a>",
            None,
        );
        assert!(d.text.contains("\u{201c}hi\u{201d}"), "{}", d.text);
        assert!(d.warning.is_none());
    }

    #[test]
    fn undeclared_latin1_falls_back_with_a_warning() {
        let d = decode(b"<rss><title>caf\xe9</title></rss>", None);
        assert_eq!(d.text, "<rss><title>café</title></rss>");
        assert!(d.warning.is_some());
    }

    #[test]
    fn utf16_and_utf32_without_bom() {
        let doc = utf16le("<?xml version=\"1.0\"?><a>ü</a>", false);
        let d = decode(&doc, None);
        assert_eq!(d.text, "<?xml version=\"1.0\"?><a>ü</a>");
        let be32: Vec<u8> = "<a>ü</a>"
            .chars()
            .flat_map(|c| (c as u32).to_be_bytes())
            .collect();
        assert_eq!(decode(&be32, None).text, "<a>ü</a>");
    }

    #[test]
    fn declared_legacy_encodings() {
        // "привет" in KOI8-R.
        let doc = b"<?xml version=\"1.0\" encoding=\"koi8-r\"?><a>\xd0\xd2\xc9\xd7\xc5\xd4</a>";
        assert_eq!(
            decode(doc, None).text,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a>привет</a>"
        );
    }
}
