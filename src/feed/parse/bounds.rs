//! Bounds applied before feed-rs sees a document, so a hostile one costs no more than a
//! normal one: at most `max_entries` entries, at most [`super::MAX_LIST_SCAN`] repeated
//! elements of one kind inside an entry, and the same for a JSON Feed's lists.

/// Items of a JSON Feed read at most (the newest first); feed-rs has no limit of its own.
/// Lists inside an item (`tags`, `authors`, `attachments`) and the feed's `authors` are cut
/// to [`super::MAX_LIST_SCAN`]: feed-rs compares each author with every one before
/// it, and gives every item without authors a copy of the feed's.
///
/// `None` when the document is within these bounds (or is no JSON object: feed-rs says
/// what is wrong with it; serde_json refuses nesting over 128 levels).
pub(super) fn bound_json(text: &str, max_entries: usize) -> Option<(String, String)> {
    use serde_json::Value;
    let max_list = super::MAX_LIST_SCAN;
    let mut doc: Value = serde_json::from_str(text).ok()?;
    let obj = doc.as_object_mut()?;
    let mut cut = Vec::new();
    let bound = |v: Option<&mut Value>, max: usize, what: &str, cut: &mut Vec<String>| {
        if let Some(Value::Array(list)) = v
            && list.len() > max
        {
            cut.push(format!("{what} ({} of {})", max, list.len()));
            list.truncate(max);
        }
    };
    bound(obj.get_mut("authors"), max_list, "feed authors", &mut cut);
    bound(obj.get_mut("items"), max_entries, "items", &mut cut);
    if let Some(Value::Array(items)) = obj.get_mut("items") {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            for list in ["tags", "authors", "attachments"] {
                bound(item.get_mut(list), max_list, list, &mut cut);
            }
        }
    }
    if cut.is_empty() {
        return None;
    }
    cut.dedup_by(|a, b| a.split(' ').next() == b.split(' ').next());
    let what = format!("the JSON Feed was cut to bounds: {}", cut.join(", "));
    Some((serde_json::to_string(&doc).ok()?, what))
}

/// What one cheap look at a document's tags says about its bounds, before any XML pass:
/// an upper bound on how many entries it has and on how many elements of any one name.
///
/// It reads the text after every `<` that may open an element (not `</`, `<!`, `<?`), up
/// to the first whitespace, `/`, `>` or `<`: a key that every real element's name begins
/// with, so the counts can only be too high (a `<` in a comment or CDATA section counts
/// too), never too low, and a bound that holds here holds for the XML reader.
#[derive(Debug, Clone, Copy)]
pub(super) struct TagCounts {
    /// `<item...` and `<entry...` openings: what `truncate_entries` counts first.
    pub(super) entries: usize,
    /// The most openings of any one key.
    pub(super) most_of_one_name: usize,
}

impl TagCounts {
    pub(super) fn of(text: &str) -> TagCounts {
        use std::collections::HashMap;
        let bytes = text.as_bytes();
        let mut per_key: HashMap<&[u8], usize> = HashMap::new();
        let (mut entries, mut most) = (0usize, 0usize);
        for at in memchr::memchr_iter(b'<', bytes) {
            let rest = &bytes[at + 1..];
            if matches!(rest.first(), Some(b'/' | b'!' | b'?')) {
                continue;
            }
            // Stopping at `<` too: each byte is read by one key at most.
            let len = rest
                .iter()
                .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>' | b'<'))
                .unwrap_or(rest.len());
            let key = &rest[..len];
            if key.starts_with(b"item") || key.starts_with(b"entry") {
                entries += 1;
            }
            let n = per_key.entry(key).or_default();
            *n += 1;
            most = most.max(*n);
        }
        TagCounts {
            entries,
            most_of_one_name: most,
        }
    }
}

/// How many times `<item` and `<entry` occur in `text`.
fn entry_openings(text: &str) -> usize {
    let bytes = text.as_bytes();
    memchr::memchr_iter(b'<', bytes)
        .filter(|&at| {
            let rest = &bytes[at + 1..];
            rest.starts_with(b"item") || rest.starts_with(b"entry")
        })
        .count()
}

/// The document without the children of an entry (or of the channel or feed; entries
/// themselves excepted) past the first `max` of the same name: 600,000 `<category>`s in one item would otherwise become
/// 600,000 feed-rs values (tens of megabytes) that normalise reads no further than `max`.
/// `None` when no element has that many children of one name; else the cut document and
/// how many elements were left out.
///
/// Counted for elements up to the depth where entries' children are (`rss > channel > item
/// > category`); the document is copied once, in ranges, when something is cut.
#[cfg(test)]
pub(super) fn cut_long_lists(text: &str, max: usize) -> Option<(String, usize)> {
    cut_long_lists_counted(text, max, &TagCounts::of(text))
}

/// [`cut_long_lists`] with the document's [`TagCounts`] already taken: when no name occurs
/// more than `max` times in the whole document, no element can have more than `max`
/// children of one name, and the XML pass is skipped.
pub(super) fn cut_long_lists_counted(
    text: &str,
    max: usize,
    tags: &TagCounts,
) -> Option<(String, usize)> {
    use quick_xml::events::Event;
    use std::borrow::Cow;
    use std::collections::HashMap;
    /// The deepest parent whose children are counted (`item` in `rss > channel > item`).
    const DEEPEST_PARENT: usize = 3;
    if tags.most_of_one_name <= max {
        return None;
    }
    let mut reader = quick_xml::Reader::from_str(text);
    // For each open element up to DEEPEST_PARENT: how many children of each name. Names
    // are borrowed from the text where the event starts (always, but checked).
    let mut counts: Vec<HashMap<Cow<'_, str>, usize>> = vec![HashMap::new()];
    let mut depth = 0usize;
    let mut out = String::new();
    let mut copied = 0usize;
    let mut dropped = 0usize;
    loop {
        let before = reader.buffer_position() as usize;
        let (e, empty) = match reader.read_event() {
            Ok(Event::Start(e)) => (e, false),
            Ok(Event::Empty(e)) => (e, true),
            Ok(Event::End(_)) => {
                if depth <= DEEPEST_PARENT {
                    counts.pop();
                }
                depth = depth.saturating_sub(1);
                continue;
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => continue,
        };
        let qname = e.name();
        let owned = qname.into_inner();
        let name: Cow<'_, str> = match text.get(before + 1..before + 1 + owned.len()) {
            Some(s) if s == owned => Cow::Borrowed(s),
            _ => Cow::Owned(owned.to_string()),
        };
        // Entries are not a list of this kind: `max_entries` bounds them.
        let local = name.rsplit(':').next().unwrap_or(&name);
        let over = depth <= DEEPEST_PARENT
            && !matches!(local, "item" | "entry")
            && counts.last_mut().is_some_and(|c| {
                let n = c.entry(name.clone()).or_default();
                *n += 1;
                *n > max
            });
        if over {
            if !empty {
                let end = quick_xml::name::QName(&name);
                if reader.read_to_end(end).is_err() {
                    break;
                }
            }
            let after = reader.buffer_position() as usize;
            out.push_str(text.get(copied..before)?);
            copied = after;
            dropped += 1;
            continue;
        }
        if !empty {
            depth += 1;
            if depth <= DEEPEST_PARENT {
                counts.push(HashMap::new());
            }
        }
    }
    if dropped == 0 {
        return None;
    }
    out.push_str(text.get(copied..)?);
    Some((out, dropped))
}

/// The document cut after its `max`-th entry (`<item>` or `<entry>`), with the elements
/// still open at that point closed again; `None` when it has no more than `max` entries.
/// Also returns how many entries were seen (the scan stops soon after the cut).
pub(super) fn truncate_entries(text: &str, max: usize) -> Option<(String, usize)> {
    use quick_xml::events::Event;
    // Cheap test first: most feeds are far below any limit.
    if entry_openings(text) <= max {
        return None;
    }
    let mut reader = quick_xml::Reader::from_str(text);
    let mut open: Vec<String> = Vec::new();
    let mut seen = 0usize;
    let mut cut_at = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => open.push(e.name().into_inner().to_string()),
            Ok(Event::End(e)) => {
                open.pop();
                let name = e.local_name();
                if matches!(name.into_inner(), "item" | "entry") {
                    seen += 1;
                    if seen == max {
                        cut_at = Some((
                            usize::try_from(reader.buffer_position()).ok()?,
                            open.clone(),
                        ));
                    } else if seen > max {
                        break;
                    }
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let (at, still_open) = cut_at?;
    if seen <= max {
        return None;
    }
    let mut out = String::with_capacity(at + 64);
    out.push_str(text.get(..at)?);
    for name in still_open.iter().rev() {
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }
    Some((out, seen))
}
