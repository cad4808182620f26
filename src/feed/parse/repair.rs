//! Repairs of XML breakage real feed readers forgive: bare `&`, undeclared HTML entities,
//! an `<rss>` with an odd or no `version`, or no `<channel>`. Tried only after the strict
//! parse failed.

/// Repairs what real readers forgive; `None` when there is nothing to repair.
pub(super) fn repair(text: &str) -> Option<(String, String)> {
    let mut what = Vec::new();
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    let (mut bare, mut html_entities) = (0usize, 0usize);
    while let Some(i) = rest.find(['&', '<']) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        // Copy CDATA sections and comments through untouched (each one: another may follow
        // right after).
        if let Some((_, close)) = [("<![CDATA[", "]]>"), ("<!--", "-->")]
            .into_iter()
            .find(|(open, _)| rest.starts_with(open))
        {
            let end = rest.find(close).map_or(rest.len(), |e| e + close.len());
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        if rest.starts_with('<') {
            out.push('<');
            rest = &rest[1..];
            continue;
        }
        if !rest.starts_with('&') {
            continue;
        }
        let name_len = rest[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
            .unwrap_or(rest.len() - 1);
        let name = &rest[1..1 + name_len];
        let terminated = rest[1 + name_len..].starts_with(';');
        if terminated
            && (matches!(name, "amp" | "lt" | "gt" | "quot" | "apos") || is_char_ref(name))
        {
            out.push_str(&rest[..name_len + 2]);
            rest = &rest[name_len + 2..];
            continue;
        }
        if terminated && !name.is_empty() {
            let entity = &rest[..name_len + 2];
            let decoded = html_escape::decode_html_entities(entity);
            if decoded != entity {
                for c in decoded.chars() {
                    out.push_str(&format!("&#x{:X};", c as u32));
                }
                html_entities += 1;
                rest = &rest[name_len + 2..];
                continue;
            }
        }
        out.push_str("&amp;");
        bare += 1;
        rest = &rest[1..];
    }
    out.push_str(rest);
    if html_entities > 0 {
        what.push(format!("{html_entities} undeclared HTML entities"));
    }
    if bare > 0 {
        what.push(format!("{bare} bare '&'"));
    }
    if let Some(fixed) = fix_rss_version(&out) {
        out = fixed;
        what.push("an <rss> element without version 2.0".to_string());
    }
    // RSS 2.0 put in a namespace of its own (an early UserLand draft).
    for ns in super::rewrite::userland_ns_declarations() {
        if out.contains(&ns) {
            out = out.replacen(&ns, "", 1);
            what.push("RSS 2.0 in the backend.userland.com namespace".to_string());
        }
    }
    if let Some(fixed) = wrap_rss_channel(&out) {
        out = fixed;
        what.push("an <rss> element without <channel>".to_string());
    }
    (!what.is_empty()).then(|| (out, what.join(", ")))
}

/// An `<rss>` with no `<channel>` (items straight inside, or nothing at all): its content
/// wrapped in one, as feedparser reads it.
fn wrap_rss_channel(text: &str) -> Option<String> {
    if text.contains("<channel") {
        return None;
    }
    let at = text.find("<rss")?;
    let end = at + text[at..].find('>')?;
    if text[..end].ends_with('/') {
        let start_tag = text[at..end].trim_end_matches('/').trim_end();
        return Some(format!(
            "{}{start_tag}><channel></channel></rss>{}",
            &text[..at],
            &text[end + 1..]
        ));
    }
    let close = text.rfind("</rss>")?;
    Some(format!(
        "{}<channel>{}</channel>{}",
        &text[..=end],
        &text[end + 1..close],
        &text[close..]
    ))
}

fn is_char_ref(name: &str) -> bool {
    match name.strip_prefix('#') {
        Some(hex) if hex.starts_with(['x', 'X']) => {
            hex.len() > 1 && hex[1..].chars().all(|c| c.is_ascii_hexdigit())
        }
        Some(dec) => !dec.is_empty() && dec.chars().all(|c| c.is_ascii_digit()),
        None => false,
    }
}

/// An `<rss>` root whose `version` feed-rs does not accept (missing, "2.00", "2.0.1"...) is
/// read as RSS 2.0, as every reader does.
fn fix_rss_version(text: &str) -> Option<String> {
    let at = text.find("<rss")?;
    if !text[at + 4..].starts_with([' ', '>', '\t', '\r', '\n']) {
        return None;
    }
    let end = at + text[at..].find('>')?;
    let tag = &text[at..end];
    // `version` as an attribute name, not inside another attribute's value.
    let version_at = tag.match_indices("version").map(|(i, _)| i).find(|&i| {
        tag[..i].ends_with([' ', '\t', '\r', '\n']) && tag[i + 7..].trim_start().starts_with('=')
    });
    let version = version_at.and_then(|v| {
        let rest = tag[v + 7..].trim_start().strip_prefix('=')?.trim_start();
        let q = rest.chars().next()?;
        let value = rest.get(1..)?;
        Some(&value[..value.find(q)?])
    });
    if matches!(version, Some("2.0" | "0.91" | "0.92" | "")) {
        return None;
    }
    let mut new_tag = String::from("<rss version=\"2.0\"");
    let attrs = &tag[4..];
    match version_at {
        Some(v) => {
            // Drop the old version attribute.
            let rest = &tag[v..];
            let q_start = rest.find(['"', '\''])?;
            let q = rest[q_start..].chars().next()?;
            let q_end = q_start + 1 + rest[q_start + 1..].find(q)?;
            new_tag.push_str(&tag[4..v]);
            new_tag.push_str(&rest[q_end + 1..]);
        }
        None => new_tag.push_str(attrs),
    }
    Some(format!("{}{}{}", &text[..at], new_tag, &text[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `]]]]><![CDATA[>` is how a CDATA section holds `]]>`: the second section is copied
    /// untouched like the first, its `&` not escaped.
    #[test]
    fn adjacent_cdata_sections_are_left_alone() {
        let xml = "<rss><channel><title>Fish & Chips</title><item><description><![CDATA[a]]><![CDATA[b & c]]><!-- x --><![CDATA[d & e]]></description></item></channel></rss>";
        let (repaired, _) = repair(xml).expect("repaired");
        assert!(
            repaired.contains("<![CDATA[a]]><![CDATA[b & c]]><!-- x --><![CDATA[d & e]]>"),
            "{repaired}"
        );
        assert!(repaired.contains("Fish &amp; Chips"), "{repaired}");
    }
}
