//! Selectors proposed for a page that has no feed (`tributary add`): its repeated entry
//! pattern found, written as a `[source.select]` a person can read, and checked by reading
//! the page with it. No I/O.
//!
//! How:
//! 1. **Groups.** Elements that repeat: siblings of one tag under one parent (`ul > li`,
//!    `tbody > tr`), those of them sharing a class (`tr.athing` among `tr.spacer` rows),
//!    and elements of one tag and class anywhere on the page whose parents look alike
//!    (`article`, `div.post`, each wrapped in a column of its own; not `div.flex`, used all
//!    over; a class with an entry word, `div.newslist`, in two lists too). A group needs
//!    [`MIN_ENTRIES`] members. Of classes the same siblings share (WordPress's `post`,
//!    `hentry`, `type-post`) the one with an entry word names the group; a class only some
//!    of a larger class's members have (`category-film`, one category's posts) is marked.
//! 2. **Features** of a sample of each group's members (spread over the group): a link with
//!    text (required of most), headings, `<time>` or a date, paragraphs, text beside the
//!    link, how many links, whether the members sit in navigation (`nav`, `header`,
//!    `footer`, `role=navigation`, classes like `menu`, `pagination`) or a sidebar (`aside`,
//!    classes like `sidebar`, `SideBox`, `widget`; a class on an element holding a third of
//!    the page is a layout's name and does not count), their link texts' length ("Home",
//!    "About" are menu words, not titles) and links to the site's root. A member's link is
//!    its first heading's (with text), else the member itself, else the first where a title
//!    is (`.release-header`, `.titleline`), else the one with the longest text. Headings are
//!    read with the elements after them, as on a flat page.
//! 3. **A score** from those: semantic containers (`article`, `li`, `tr`, classes all members
//!    share like `post`, `entry`, `story`) and rich members win; navigation and menus lose
//!    whatever their size, sidebars less; so do groups mixing dated and undated members (two
//!    lists under one tag), one category's members, and members too large to be entries
//!    unless they have a title (a release with long notes); only the best
//!    [`MAX_GROUPS_TRIED`] go on.
//! 4. **Selectors.** `items` is the plainest selector that matches the group and little
//!    else: `article`, `div.post`, then qualified by the container (`ul.releases > li`,
//!    `#news article`, `main article`). Field selectors are written only where the
//!    defaults of [`super::Selectors`] would read the wrong thing: `title`/`link` when the
//!    entry's link is not its first one and there is no heading (`span.titleline > a`),
//!    `date` when there is no `<time>` but an element whose text or `title`/`datetime`
//!    attribute is a date (`span.date`, `span.age@title`).
//! 5. **Checked.** Each proposal is read with [`super::read`] exactly as a poll would; only
//!    those giving at least [`MIN_ENTRIES`] entries with distinct links and titles, most of
//!    them not dates ("2 hours ago" is a byline), are kept, scored again with what they gave
//!    (dates, distinct links and titles, titles of more than one word unless where a title
//!    is: a user's or a site's name is not a headline; links to the site's root), best
//!    first. Navigation is offered only when nothing else is.
//!
//! Bounded: at most [`MAX_ELEMENTS`] elements are looked at, [`MAX_WORK`] node visits spent
//! on features, [`MAX_GROUPS_TRIED`] groups read; the page size is the fetcher's cap.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use dom_query::{Document, Matcher, NodeId, NodeRef};
use url::Url;

use super::{Pick, Selectors, SourceKind};

/// A proposal must give at least this many entries, with distinct links and titles.
pub const MIN_ENTRIES: usize = 3;

/// Elements of the page looked at, at most (in document order).
pub const MAX_ELEMENTS: usize = 50_000;

/// Node visits spent on the members' features, in all.
pub const MAX_WORK: usize = 4_000_000;

/// Groups whose selectors are written and read, at most.
pub const MAX_GROUPS_TRIED: usize = 12;

/// Members of a group whose features are looked at.
const SAMPLE: usize = 20;

/// Entries read per proposal, at most.
const MAX_ENTRIES: usize = 500;

/// Entries shown per proposal.
pub const SHOWN: usize = 3;

/// Selectors for a page, with what they give.
#[derive(Clone, Debug)]
pub struct Proposal {
    pub selectors: Selectors,
    /// The entries the page gives with them.
    pub entries: usize,
    /// The first [`SHOWN`] of them.
    pub first: Vec<Sample>,
    /// The page's `<title>`.
    pub page_title: Option<String>,
    /// Higher is better; proposals come sorted by it.
    pub score: f64,
}

/// One entry as a proposal reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub title: Option<String>,
    pub link: Option<String>,
    pub date: Option<DateTime<Utc>>,
}

/// At most `max` proposals for the page `bytes` (with its Content-Type, fetched from `url`),
/// best first; none when it has no repeated pattern that gives entries. `now` anchors
/// relative dates. See the module docs.
pub fn propose(
    bytes: &[u8],
    content_type: Option<&str>,
    url: &Url,
    now: DateTime<Utc>,
    max: usize,
) -> Vec<Proposal> {
    if max == 0 {
        return Vec::new();
    }
    let decoded = crate::feed::charset::decode_html(bytes, content_type);
    let html = crate::feed::text::bound_html(&decoded.text);
    let doc = Document::from(&*html);
    drop(html);
    let page = Page::read(&doc, url);
    let mut groups = page.groups();
    // The likeliest first, so the work bound, if reached, leaves out the unlikely ones.
    groups.sort_by(|a, b| page.likeliness(b).total_cmp(&page.likeliness(a)));
    let work = Cell::new(0usize);
    let mut scored: Vec<(f64, Group, Features)> = groups
        .drain(..)
        .filter_map(|g| {
            let f = page.features(&g, &work, now)?;
            Some((f.score(&g, &page), g, f))
        })
        .filter(|(s, _, _)| *s > 0.0)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));

    let mut proposals: Vec<(Proposal, bool, HashSet<String>)> = Vec::new();
    let mut seen_entries: HashSet<Vec<String>> = HashSet::new();
    let mut seen_selectors: HashSet<String> = HashSet::new();
    for (_, group, features) in scored.into_iter().take(MAX_GROUPS_TRIED) {
        let Some(items) = page.items_selector(&group) else {
            continue;
        };
        if !seen_selectors.insert(items.clone()) {
            continue;
        }
        let mut selectors = Selectors::items(&items);
        page.field_selectors(&features, &mut selectors);
        let kind = SourceKind::Html(selectors);
        let Ok(parsed) = super::read(&kind, bytes, content_type, url, MAX_ENTRIES, now) else {
            continue;
        };
        let SourceKind::Html(selectors) = kind else {
            continue;
        };
        let samples: Vec<Sample> = parsed
            .feed
            .entries
            .iter()
            .map(|e| Sample {
                title: e.title.as_ref().map(|t| t.content.clone()),
                link: e.links.first().map(|l| l.href.clone()),
                date: e.published,
            })
            .collect();
        let Some(checked) = Checked::of(&samples, &page, now) else {
            continue;
        };
        let links: Vec<String> = samples.iter().filter_map(|s| s.link.clone()).collect();
        if !seen_entries.insert(links.clone()) {
            continue;
        }
        let score = features.score(&group, &page) * checked.factor(features.titled);
        let proposal = Proposal {
            selectors,
            entries: samples.len(),
            first: samples.into_iter().take(SHOWN).collect(),
            page_title: parsed.feed.title.map(|t| t.content),
            score,
        };
        let links: HashSet<String> = links.into_iter().collect();
        proposals.push((proposal, features.chrome > 0.5, links));
    }
    proposals.sort_by(|a, b| b.0.score.total_cmp(&a.0.score));
    // Navigation is offered only when nothing else is; far behind the best is noise.
    if proposals.iter().any(|(_, chrome, _)| !chrome) {
        proposals.retain(|(_, chrome, _)| !chrome);
    }
    let floor = proposals.first().map_or(0.0, |(p, ..)| p.score / 10.0);
    let mut kept: Vec<(Proposal, HashSet<String>)> = Vec::new();
    for (p, _, links) in proposals {
        // Some of a better proposal's entries (one category of the posts) add nothing.
        if p.score < floor || kept.iter().any(|(_, better)| links.is_subset(better)) {
            continue;
        }
        kept.push((p, links));
        if kept.len() == max {
            break;
        }
    }
    kept.into_iter().map(|(p, _)| p).collect()
}

/// What reading the page with a proposal gave, if it is good enough to offer.
struct Checked {
    entries: usize,
    distinct_links: usize,
    dated: usize,
    /// Titles of more than one word: a headline, not a name (a user, a site, a menu's
    /// "Security").
    worded: usize,
    /// Links to the site's root (a logo, "Home").
    root: usize,
    distinct_titles: usize,
}

impl Checked {
    fn of(samples: &[Sample], page: &Page, now: DateTime<Utc>) -> Option<Checked> {
        let links: HashSet<&str> = samples.iter().filter_map(|s| s.link.as_deref()).collect();
        let titles: HashSet<&str> = samples.iter().filter_map(|s| s.title.as_deref()).collect();
        let complete = samples
            .iter()
            .filter(|s| s.link.is_some() && s.title.is_some())
            .count();
        // Titles that are dates ("2 hours ago", "6. November 2023") are a byline's.
        let date_titles = samples
            .iter()
            .filter_map(|s| s.title.as_deref())
            .filter(|t| {
                t.len() <= 60
                    && crate::feed::dates::parse_loose(t, None, chrono_tz::UTC, now).is_some()
            })
            .count();
        if links.len() < MIN_ENTRIES
            || titles.len() < MIN_ENTRIES
            || complete * 5 < samples.len() * 4
            || date_titles * 2 > samples.len()
        {
            return None;
        }
        Some(Checked {
            entries: samples.len(),
            distinct_links: links.len(),
            dated: samples.iter().filter(|s| s.date.is_some()).count(),
            worded: samples
                .iter()
                .filter(|s| {
                    s.title
                        .as_deref()
                        .is_some_and(|t| t.split_whitespace().nth(1).is_some())
                })
                .count(),
            root: samples
                .iter()
                .filter(|s| s.link.as_deref().is_some_and(|l| page.is_root_link(l)))
                .count(),
            distinct_titles: titles.len(),
        })
    }

    /// Entries that repeat a link or a title, lack a date, are named by one word or link to the
    /// site's root make a proposal worse; one word is a title where a title is (`titled`:
    /// the share of members whose link is in a heading or a `.title`: "v2.10.2").
    fn factor(&self, titled: f64) -> f64 {
        let n = self.entries.max(1) as f64;
        (self.distinct_links as f64 / n)
            * (self.distinct_titles as f64 / n).min(1.0)
            * (1.0 + 0.5 * self.dated as f64 / n)
            * (0.2 + 0.8 * (self.worded as f64 / n).max(titled))
            * (1.0 - 0.8 * self.root as f64 / n)
    }
}

/// What is known of one element of the page.
struct Element {
    tag: String,
    /// Classes usable in a selector, as written.
    classes: Vec<String>,
    id: Option<String>,
    parent: Option<NodeId>,
    /// Inside navigation, a header, a footer or a menu.
    chrome: bool,
    /// Inside a sidebar (`aside`, `.sidebar`, `.widget`).
    side: bool,
    /// Inside `<main>` (or `role=main`).
    in_main: bool,
}

/// The page's elements, in document order.
struct Page<'a> {
    doc: &'a Document,
    elements: HashMap<NodeId, Element>,
    order: Vec<NodeId>,
    host: Option<String>,
    url: Url,
    has_main: bool,
}

/// Elements that repeat: one tag (and maybe class), under one parent or anywhere.
#[derive(Clone, Debug)]
struct Group {
    members: Vec<NodeId>,
    tag: String,
    /// The class every member has (`tr.athing`), if the group was made by it.
    class: Option<String>,
    /// The members' common parent, for siblings.
    parent: Option<NodeId>,
    /// Made by a class that only some of the members of a larger class have (a category's
    /// posts, `div.category-film` among `div.post`).
    subset: bool,
}

/// Tags whose elements may be entries.
const ITEM_TAGS: &[&str] = &[
    "article",
    "section",
    "li",
    "tr",
    "div",
    "p",
    "dd",
    "dt",
    "figure",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "a",
    "span",
    "blockquote",
    "tbody",
];

/// Words in a class or id that mark navigation and page chrome.
const CHROME_WORDS: &[&str] = &[
    "nav",
    "menu",
    "footer",
    "breadcrumb",
    "pagination",
    "pager",
    "toolbar",
    "masthead",
    "social",
    "share",
    "cookie",
    "skip",
    "tags",
    "tagcloud",
    "language",
];

/// Words in a class or id that mark a sidebar (`sidebar`, `SideBox`, `widget`): lists there
/// may be entries ("recent posts"), but the page's own content comes first.
const SIDE_WORDS: &[&str] = &["side", "widget", "related"];

/// Words in a class or id that mark where an entry's title is (`release-header`,
/// `titleline`, `headline`): the first link there is the entry's.
const TITLE_WORDS: &[&str] = &["title", "header", "headline", "heading"];

/// Words in a class that mark entries (not layout words such as `row`, `col`).
const ENTRY_WORDS: &[&str] = &[
    "post", "entry", "item", "story", "article", "card", "teaser", "release", "news", "result",
    "athing", "headline", "listing",
];

impl<'a> Page<'a> {
    fn read(doc: &'a Document, url: &Url) -> Page<'a> {
        let mut elements: HashMap<NodeId, Element> = HashMap::new();
        let mut order = Vec::new();
        // Each element's own marks: chrome by its tag or role, by its class; sidebar by
        // its tag, by its class.
        let mut own: Vec<[bool; 4]> = Vec::new();
        let mut has_main = false;
        for node in doc.root().descendants_it() {
            if order.len() >= MAX_ELEMENTS {
                break;
            }
            if !node.is_element() {
                continue;
            }
            let Some(tag) = node.node_name().map(|n| n.to_ascii_lowercase()) else {
                continue;
            };
            let parent = node.parent().map(|p| p.id);
            let inherited = parent.and_then(|p| elements.get(&p));
            let role = node.attr("role").map(|r| r.to_ascii_lowercase());
            let class_attr = node.class().map(|c| c.to_string()).unwrap_or_default();
            let id_attr = node.id_attr().map(|i| i.to_string());
            let words = class_attr
                .split_whitespace()
                .chain(id_attr.as_deref())
                .flat_map(|w| w.split(['-', '_']))
                .map(str::to_ascii_lowercase);
            let side = tag == "aside";
            let chrome = matches!(tag.as_str(), "nav" | "menu")
                || (matches!(tag.as_str(), "header" | "footer") && !within_entry(&node))
                || role.as_deref().is_some_and(|r| {
                    matches!(
                        r,
                        "navigation" | "banner" | "contentinfo" | "menu" | "menubar"
                    )
                });
            // A page-wide class (`<body class="has-sidebar">`) says nothing of its parts.
            let (mut chrome_class, mut side_class) = (false, false);
            if !matches!(tag.as_str(), "html" | "body" | "main" | "article") {
                for w in words {
                    chrome_class |= CHROME_WORDS.iter().any(|c| w.starts_with(c));
                    side_class |= SIDE_WORDS.iter().any(|c| w.starts_with(c));
                }
            }
            own.push([chrome, chrome_class, side, side_class]);
            let is_main = tag == "main" || role.as_deref() == Some("main");
            has_main |= is_main;
            let element = Element {
                classes: class_attr
                    .split_whitespace()
                    .filter(|c| is_ident(c))
                    .map(str::to_string)
                    .collect(),
                id: id_attr.filter(|i| is_ident(i)),
                parent,
                chrome: false,
                side: false,
                in_main: is_main || inherited.is_some_and(|p| p.in_main),
                tag,
            };
            elements.insert(node.id, element);
            order.push(node.id);
        }
        // A class read as chrome (`experiment-repo-nav`, `has-sidebar`) on an element that
        // holds a large part of the page is a layout's name, not its parts'.
        let mut sizes: HashMap<NodeId, usize> = HashMap::new();
        for id in order.iter().rev() {
            let size = sizes.get(id).copied().unwrap_or(0) + 1;
            sizes.insert(*id, size);
            if let Some(p) = elements.get(id).and_then(|e| e.parent) {
                *sizes.entry(p).or_default() += size;
            }
        }
        for (id, [chrome_tag, chrome_class, side_tag, side_class]) in order.iter().zip(own) {
            let small = sizes.get(id).copied().unwrap_or(0) * 3 <= order.len();
            let (inherited_chrome, inherited_side) = elements
                .get(id)
                .and_then(|e| e.parent)
                .and_then(|p| elements.get(&p))
                .map_or((false, false), |p| (p.chrome, p.side));
            if let Some(e) = elements.get_mut(id) {
                e.chrome = chrome_tag || (chrome_class && small) || inherited_chrome;
                e.side = side_tag || (side_class && small) || inherited_side;
            }
        }
        Page {
            doc,
            elements,
            order,
            host: url.host_str().map(str::to_string),
            url: url.clone(),
            has_main,
        }
    }

    /// Every group of repeated elements (see the module docs), each member set once.
    fn groups(&self) -> Vec<Group> {
        let mut siblings: HashMap<(NodeId, &str), Vec<NodeId>> = HashMap::new();
        let mut anywhere: HashMap<(&str, Option<&str>), Vec<NodeId>> = HashMap::new();
        for id in &self.order {
            let Some(e) = self.elements.get(id) else {
                continue;
            };
            if !ITEM_TAGS.contains(&e.tag.as_str()) {
                continue;
            }
            if let Some(p) = e.parent {
                siblings.entry((p, e.tag.as_str())).or_default().push(*id);
            }
            if matches!(e.tag.as_str(), "article" | "section") {
                anywhere
                    .entry((e.tag.as_str(), None))
                    .or_default()
                    .push(*id);
            }
            for c in &e.classes {
                anywhere
                    .entry((e.tag.as_str(), Some(c.as_str())))
                    .or_default()
                    .push(*id);
            }
        }
        let mut out = Vec::new();
        let mut seen: HashSet<Vec<NodeId>> = HashSet::new();
        let mut push = |g: Group, out: &mut Vec<Group>| {
            if g.members.len() >= MIN_ENTRIES && seen.insert(g.members.clone()) {
                out.push(g);
            }
        };
        // In document order of their first member, so equal scores keep the page's order.
        let mut sibling_groups: Vec<_> = siblings.into_iter().collect();
        sibling_groups.sort_by_key(|(_, m)| m.first().copied());
        for ((parent, tag), members) in sibling_groups {
            if members.len() < MIN_ENTRIES {
                continue;
            }
            // Those sharing a class, when not all do.
            let mut by_class: HashMap<&str, Vec<NodeId>> = HashMap::new();
            for m in &members {
                if let Some(e) = self.elements.get(m) {
                    for c in &e.classes {
                        by_class.entry(c.as_str()).or_default().push(*m);
                    }
                }
            }
            let mut classed: Vec<_> = by_class
                .into_iter()
                .filter(|(_, m)| m.len() >= MIN_ENTRIES && m.len() < members.len())
                .collect();
            // Of classes all the same members have (`post`, `hentry`, `type-post`), the one a
            // person would write comes first and names the group.
            classed.sort_by(|a, b| {
                a.1.first()
                    .cmp(&b.1.first())
                    .then(class_preference(a.0).cmp(&class_preference(b.0)))
                    .then(a.0.cmp(b.0))
            });
            let sets: Vec<HashSet<NodeId>> = classed
                .iter()
                .map(|(_, m)| m.iter().copied().collect())
                .collect();
            for (i, (class, m)) in classed.into_iter().enumerate() {
                let subset = sets.iter().enumerate().any(|(j, other)| {
                    j != i && other.len() > m.len() && m.iter().all(|x| other.contains(x))
                });
                push(
                    Group {
                        members: m,
                        tag: tag.to_string(),
                        class: Some(class.to_string()),
                        parent: Some(parent),
                        subset,
                    },
                    &mut out,
                );
            }
            push(
                Group {
                    members,
                    tag: tag.to_string(),
                    class: None,
                    parent: Some(parent),
                    subset: false,
                },
                &mut out,
            );
        }
        let mut anywhere: Vec<_> = anywhere.into_iter().collect();
        anywhere.sort_by(|a, b| a.1.first().cmp(&b.1.first()).then(a.0.cmp(&b.0)));
        for ((tag, class), members) in anywhere {
            // Those in navigation and footers are not the page's entries, nor those in
            // sidebars unless the rest are too few (an article page's "news" box); of the
            // others, those whose parents look alike (`div.column > article`): a class
            // used all over a page (`div.flex`) is layout, not a pattern.
            let members: Vec<NodeId> = members
                .into_iter()
                .filter(|m| self.elements.get(m).is_some_and(|e| !e.chrome))
                .collect();
            let outside: Vec<NodeId> = members
                .iter()
                .copied()
                .filter(|m| self.elements.get(m).is_some_and(|e| !e.side))
                .collect();
            let members = if outside.len() >= MIN_ENTRIES {
                outside
            } else {
                members
            };
            let parent_kind = |m: &NodeId| -> Option<(&str, &[String])> {
                let p = self.elements.get(self.elements.get(m)?.parent.as_ref()?)?;
                Some((p.tag.as_str(), p.classes.as_slice()))
            };
            let mut kinds: HashMap<Option<(&str, &[String])>, usize> = HashMap::new();
            for m in &members {
                *kinds.entry(parent_kind(m)).or_default() += 1;
            }
            let Some((usual, count)) = kinds.into_iter().max_by_key(|(_, n)| *n) else {
                continue;
            };
            // A class that says "entry" (`newslist`, `post`) is a pattern wherever it is: in
            // two lists with parents of their own, all of them too.
            if class.is_some_and(has_entry_word) && count < members.len() {
                push(
                    Group {
                        members: members.clone(),
                        tag: tag.to_string(),
                        class: class.map(str::to_string),
                        parent: None,
                        subset: false,
                    },
                    &mut out,
                );
            }
            if count * 5 < members.len() * 3 {
                continue;
            }
            let members: Vec<NodeId> = members
                .into_iter()
                .filter(|m| parent_kind(m) == usual)
                .collect();
            push(
                Group {
                    members,
                    tag: tag.to_string(),
                    class: class.map(str::to_string),
                    parent: None,
                    subset: false,
                },
                &mut out,
            );
        }
        out
    }

    /// The features of a sample of `g`'s members; `None` when too few hold a link with
    /// text, or the work bound is reached.
    fn features(&self, g: &Group, work: &Cell<usize>, now: DateTime<Utc>) -> Option<Features> {
        let mut f = Features::default();
        let mut title_lengths = Vec::new();
        let mut sampled = 0usize;
        // Spread over the group: a group mixing two lists shows both.
        let step = (g.members.len() / SAMPLE).max(1);
        let flat = matches!(
            g.tag.as_str(),
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "dt" | "tr"
        );
        let members: HashSet<NodeId> = if flat {
            g.members.iter().copied().collect()
        } else {
            HashSet::new()
        };
        f.flat = members.clone();
        for id in g.members.iter().step_by(step).take(SAMPLE) {
            if work.get() >= MAX_WORK {
                return None;
            }
            let node = self.node_of(id)?;
            sampled += 1;
            let mut m = Member::read(&node, work, now);
            if flat {
                m.read_trailing(&node, &members, work, now);
            }
            if let Some(e) = self.elements.get(id) {
                f.chrome += f64::from(u8::from(e.chrome));
                f.side += f64::from(u8::from(e.side));
            }
            f.huge += f64::from(u8::from(m.huge && !m.titled));
            f.dated += f64::from(u8::from(m.time || m.date.is_some()));
            f.titled += f64::from(u8::from(m.titled));
            f.links += m.links.len() as f64;
            f.heading += f64::from(u8::from(m.heading.is_some()));
            f.headings += m.headings as f64;
            f.time += f64::from(u8::from(m.time));
            f.paragraph += f64::from(u8::from(m.paragraph));
            if m.main.is_none() {
                f.members.push(m);
                continue;
            }
            f.with_link += 1.0;
            let chars = m.main_text.chars().count();
            title_lengths.push(chars);
            f.extra_text += m.text_chars.saturating_sub(chars) as f64;
            if self.is_root_link(&m.main_href) {
                f.root_links += 1.0;
            }
            f.members.push(m);
        }
        if sampled == 0 || f.with_link < MIN_ENTRIES as f64 {
            return None;
        }
        let n = sampled as f64;
        for x in [
            &mut f.chrome,
            &mut f.side,
            &mut f.dated,
            &mut f.titled,
            &mut f.heading,
            &mut f.time,
            &mut f.paragraph,
            &mut f.huge,
            &mut f.headings,
        ] {
            *x /= n;
        }
        f.links /= n;
        f.root_links /= f.with_link;
        f.extra_text /= f.with_link;
        f.with_link /= n;
        title_lengths.sort_unstable();
        f.title_chars = title_lengths[title_lengths.len() / 2];
        Some(f)
    }

    /// A cheap guess of how likely `g` holds the entries, before its members are read:
    /// its size, its tag, whether it is in navigation.
    fn likeliness(&self, g: &Group) -> f64 {
        let first = g.members.first().and_then(|m| self.elements.get(m));
        let chrome = if first.is_some_and(|e| e.chrome) {
            0.1
        } else {
            1.0
        };
        let tag = match g.tag.as_str() {
            "article" | "li" | "tr" => 2.0,
            "div" | "section" | "h2" | "h3" => 1.5,
            _ => 1.0,
        };
        (g.members.len().min(40) as f64) * tag * chrome
    }

    /// A link to the site's root (`/`, the home page), as menus and logos have.
    fn is_root_link(&self, href: &str) -> bool {
        let Ok(u) = self.url.join(href.trim()) else {
            return false;
        };
        u.host_str() == self.host.as_deref() && u.path() == "/" && u.query().is_none()
    }

    fn node_of(&self, id: &NodeId) -> Option<NodeRef<'a>> {
        self.doc.tree.get(id)
    }
}

impl Page<'_> {
    /// The plainest selector that matches `g`'s members and few other elements (see the
    /// module docs), `None` when none does.
    fn items_selector(&self, g: &Group) -> Option<String> {
        let members: HashSet<NodeId> = g.members.iter().copied().collect();
        // The classes every member has, the group's own first, readable ones before others.
        let mut common: Vec<String> = self
            .elements
            .get(g.members.first()?)?
            .classes
            .iter()
            .filter(|c| {
                g.members
                    .iter()
                    .all(|m| self.elements.get(m).is_some_and(|e| e.classes.contains(c)))
            })
            .cloned()
            .collect();
        common.sort_by_key(|c| (Some(c) != g.class.as_ref(), !is_readable(c), c.len()));
        common.truncate(3);
        let tag = g.tag.as_str();
        // A class that says "entry" (`tr.story`) first, then a semantic tag alone
        // (`article`, `li`), then the other classes; a `div` or `span` alone last.
        let (entry_classes, other_classes): (Vec<&String>, Vec<&String>) = common
            .iter()
            .partition(|c| Some(*c) == g.class.as_ref() || has_entry_word(c));
        let mut sigs: Vec<String> = entry_classes.iter().map(|c| format!("{tag}.{c}")).collect();
        let semantic = !matches!(tag, "div" | "span" | "a" | "p");
        if g.class.is_none() && semantic {
            sigs.push(tag.to_string());
        }
        sigs.extend(other_classes.iter().map(|c| format!("{tag}.{c}")));
        if g.class.is_none() && !semantic {
            sigs.push(tag.to_string());
        }
        let mut containers: Vec<String> = vec![String::new()];
        let container = match g.parent {
            Some(p) => Some((p, " > ")),
            None => self.common_ancestor(&g.members).map(|a| (a, " ")),
        };
        if let Some((c, comb)) = container {
            let own = self.selectors_of(&c);
            for s in &own {
                containers.push(format!("{s}{comb}"));
            }
            if self.has_main
                && g.members
                    .iter()
                    .all(|m| self.elements.get(m).is_some_and(|e| e.in_main))
            {
                containers.push("main ".into());
            }
            // The container's own container, when the container alone is not specific.
            if let Some(gp) = self.elements.get(&c).and_then(|e| e.parent)
                && let (Some(outer), Some(inner)) = (self.selectors_of(&gp).first(), own.first())
            {
                containers.push(format!("{outer} > {inner}{comb}"));
            }
        }
        // Exactly the members, else the members and a few more (a spacer row, an ad slot:
        // they give no entry).
        for slack in [0, 4] {
            for container in &containers {
                for sig in &sigs {
                    let selector = format!("{container}{sig}");
                    if self.matches_about(&selector, &members, slack) {
                        return Some(selector);
                    }
                }
            }
        }
        None
    }

    /// Whether `selector` matches every one of `members` and at most one in `slack` more
    /// (0: exactly them). Elements past [`MAX_ELEMENTS`] do not count.
    fn matches_about(&self, selector: &str, members: &HashSet<NodeId>, slack: usize) -> bool {
        if super::check_selector(selector).is_err() {
            return false;
        }
        let Ok(m) = Matcher::new(selector) else {
            return false;
        };
        let found = self.doc.select_matcher(&m);
        let nodes = found.nodes();
        let seen = nodes
            .iter()
            .filter(|n| self.elements.contains_key(&n.id))
            .count();
        let extra = seen.saturating_sub(members.len());
        let allowed = members.len().checked_div(slack).unwrap_or(0);
        if seen < members.len() || extra > allowed {
            return false;
        }
        let hit = nodes.iter().filter(|n| members.contains(&n.id)).count();
        hit == members.len()
    }

    /// Ways to name one element in a selector: `tag.class`, `#id`, `tag`; none for `body`
    /// and `html` (no help).
    fn selectors_of(&self, id: &NodeId) -> Vec<String> {
        let Some(e) = self.elements.get(id) else {
            return Vec::new();
        };
        if matches!(e.tag.as_str(), "body" | "html") {
            return Vec::new();
        }
        let mut classes: Vec<&String> = e.classes.iter().filter(|c| is_readable(c)).collect();
        classes.truncate(2);
        let mut out: Vec<String> = classes
            .into_iter()
            .map(|c| format!("{}.{c}", e.tag))
            .collect();
        if let Some(i) = &e.id {
            out.push(format!("#{i}"));
        }
        out.push(e.tag.clone());
        out
    }

    /// The closest element holding all of `members`.
    fn common_ancestor(&self, members: &[NodeId]) -> Option<NodeId> {
        let ancestors = |id: &NodeId| -> Vec<NodeId> {
            let mut out = Vec::new();
            let mut at = self.elements.get(id).and_then(|e| e.parent);
            while let Some(p) = at {
                if out.len() > crate::feed::text::MAX_HTML_DEPTH {
                    break;
                }
                out.push(p);
                at = self.elements.get(&p).and_then(|e| e.parent);
            }
            out
        };
        let first = ancestors(members.first()?);
        let others: Vec<HashSet<NodeId>> = members
            .iter()
            .skip(1)
            .take(200)
            .map(|m| ancestors(m).into_iter().collect())
            .collect();
        first
            .into_iter()
            .find(|a| others.iter().all(|set| set.contains(a)))
    }

    /// Adds the field selectors the defaults would get wrong (see the module docs).
    fn field_selectors(&self, f: &Features, s: &mut Selectors) {
        let with_main: Vec<&Member> = f.members.iter().filter(|m| m.main.is_some()).collect();
        let n = with_main.len();
        if n == 0 {
            return;
        }
        let link_wrong = with_main
            .iter()
            .filter(|m| m.default_link != m.main)
            .count();
        // The default title is the first heading's text, else the default link's.
        let title_wrong = with_main
            .iter()
            .filter(|m| {
                !m.main_in_heading
                    && match m.heading_text.as_deref() {
                        // A heading without a link may hold the title (`h4` beside the link
                        // around the teaser).
                        Some(h) => {
                            h.is_empty() || !(m.main_text.contains(h) || h.contains(&m.main_text))
                        }
                        None => m.default_link != m.main,
                    }
            })
            .count();
        if link_wrong * 5 > n || title_wrong * 5 > n {
            let targets: Vec<(NodeId, NodeId)> = with_main
                .iter()
                .filter_map(|m| Some((m.id, m.main?)))
                .collect();
            if let Some(sel) = self.field_selector(&targets, &f.flat) {
                if link_wrong * 5 > n {
                    s.link = Some(Pick::css(&sel));
                }
                if title_wrong * 5 > n {
                    s.title = Some(Pick::css(&sel));
                }
            }
        }
        if f.time < 0.5 {
            let dated: Vec<(NodeId, NodeId, Option<&'static str>)> = f
                .members
                .iter()
                .filter_map(|m| m.date.map(|(d, a)| (m.id, d, a)))
                .collect();
            if dated.len() * 2 >= f.members.len() && dated.len() >= MIN_ENTRIES {
                let targets: Vec<(NodeId, NodeId)> =
                    dated.iter().map(|(m, d, _)| (*m, *d)).collect();
                let mut attributes: HashMap<Option<&str>, usize> = HashMap::new();
                for (_, _, a) in &dated {
                    *attributes.entry(*a).or_default() += 1;
                }
                let attribute = attributes
                    .into_iter()
                    .max_by_key(|(a, n)| (*n, a.is_some()))
                    .and_then(|(a, _)| a);
                if let Some(sel) = self.field_selector(&targets, &f.flat) {
                    s.date = Some(match attribute {
                        Some(a) if a != "datetime" => Pick::css(&format!("{sel}@{a}")),
                        _ => Pick::css(&sel),
                    });
                }
            }
        }
    }

    /// A selector that, inside each member, finds its target first (for most of them):
    /// the target's `tag.class`, its parent's `tag.class > tag`, or its tag.
    fn field_selector(
        &self,
        targets: &[(NodeId, NodeId)],
        flat: &HashSet<NodeId>,
    ) -> Option<String> {
        // Named after the first few targets: the first may be an odd one out.
        let mut options: Vec<String> = Vec::new();
        for (_, target) in targets.iter().take(3) {
            let Some(e) = self.elements.get(target) else {
                continue;
            };
            let mut own: Vec<String> = e
                .classes
                .iter()
                .filter(|c| is_readable(c))
                .take(2)
                .map(|c| format!("{}.{c}", e.tag))
                .collect();
            if let Some(p) = e.parent.and_then(|p| self.elements.get(&p)) {
                for c in p.classes.iter().filter(|c| is_readable(c)).take(2) {
                    own.push(format!("{}.{c} > {}", p.tag, e.tag));
                }
            }
            own.push(e.tag.clone());
            for o in own {
                if !options.contains(&o) {
                    options.push(o);
                }
            }
        }
        let mut best: Option<(usize, String)> = None;
        for option in options {
            let Ok(m) = Matcher::new(&option) else {
                continue;
            };
            let right = targets
                .iter()
                .filter(|(member, target)| {
                    self.node_of(member)
                        .and_then(|n| {
                            // Inside the member, then (a flat group's) the elements after
                            // it up to the next member, as the reader looks.
                            let after = std::iter::successors(n.next_element_sibling(), |s| {
                                s.next_element_sibling()
                            })
                            .take_while(|s| !flat.is_empty() && !flat.contains(&s.id))
                            .take(MAX_TRAILING)
                            .flat_map(|s| {
                                let mut nodes = vec![s];
                                nodes.extend(s.descendants_it().take(SAMPLE_NODES));
                                nodes
                            });
                            n.descendants_it()
                                .chain(after)
                                .take(SAMPLE_NODES)
                                .find(|d| d.is_element() && d.is_match(&m))
                        })
                        .is_some_and(|found| found.id == *target)
                })
                .count();
            if right * 5 >= targets.len() * 4 {
                return Some(option);
            }
            if right * 5 >= targets.len() * 3 && best.as_ref().is_none_or(|(b, _)| right > *b) {
                best = Some((right, option));
            }
        }
        best.map(|(_, o)| o)
    }
}

/// Nodes looked at inside one member (or one field's element), at most: an entry is
/// smaller; a member that is not is marked `huge`.
const SAMPLE_NODES: usize = 1_000;

/// What a sample of a group's members hold: fractions of the members (`with_link`, `chrome`,
/// `heading`, `time`, `paragraph`), averages (`links`, `extra_text`), the median title.
#[derive(Default)]
struct Features {
    members: Vec<Member>,
    with_link: f64,
    chrome: f64,
    /// In a sidebar.
    side: f64,
    /// With a `<time>` or a date.
    dated: f64,
    /// Whose main link is in a heading or where a title is.
    titled: f64,
    heading: f64,
    time: f64,
    paragraph: f64,
    /// Links per member.
    links: f64,
    /// Of the members' main links, those to the site's root.
    root_links: f64,
    /// Characters of text beside the main link's.
    extra_text: f64,
    /// The median main link's text length.
    title_chars: usize,
    /// Members too large to be entries: larger than [`SAMPLE_NODES`] without a title
    /// (a release's notes are long, but it has its title).
    huge: f64,
    /// Headings per member: more than one, and it holds entries rather than being one.
    headings: f64,
    /// For a group whose entries reach past their element (headings, terms, table rows):
    /// all its members, where the elements after one end.
    flat: HashSet<NodeId>,
}

impl Features {
    fn score(&self, g: &Group, page: &Page) -> f64 {
        if self.with_link < 0.5 {
            return 0.0;
        }
        let tag = match g.tag.as_str() {
            "article" => 1.5,
            "li" | "tr" => 1.15,
            "section" | "div" | "dd" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => 1.0,
            "a" | "span" => 0.75,
            _ => 0.85,
        };
        let class_words = g
            .class
            .iter()
            .chain(
                g.members
                    .first()
                    .and_then(|m| page.elements.get(m))
                    .map(|e| e.classes.iter())
                    .into_iter()
                    .flatten(),
            )
            .any(|c| {
                has_entry_word(c)
                    && g.members
                        .iter()
                        .all(|m| page.elements.get(m).is_some_and(|e| e.classes.contains(c)))
            });
        let entry_class = if class_words { 1.3 } else { 1.0 };
        let title: f64 = match self.title_chars {
            0..=8 => 0.2,
            9..=15 => 0.5,
            16..=24 => 0.8,
            _ => 1.0,
        };
        // Headings that link are entries ("v1.2.0" in a changelog), not a menu's words.
        let is_heading = matches!(g.tag.as_str(), "h1" | "h2" | "h3" | "h4" | "h5" | "h6");
        // So are short links where a title is ("v2.10.2" in `.release-header`).
        let title = if is_heading {
            title.max(0.8)
        } else {
            title.max(0.8 * self.titled)
        };
        let size = (g.members.len().min(40) as f64).sqrt();
        let richness = 1.0
            + self.heading
            + self.time
            + 0.5 * self.paragraph
            + 0.5 * (self.extra_text / 80.0).min(1.0);
        let containers = if self.headings > 1.5 {
            1.0 / self.headings
        } else {
            1.0
        };
        let links = if self.links > 8.0 {
            (8.0 / self.links).sqrt()
        } else {
            1.0
        };
        // A group of which some have a date and others not mixes two lists (a section's
        // dated articles and the site's "most read" teasers, all `article`).
        let mixed = 1.0 - 0.6 * (1.0 - (2.0 * self.dated - 1.0).abs());
        // A category's posts, when all posts are a group of their own.
        let subset = if g.subset { 0.35 } else { 1.0 };
        size * self.with_link
            * self.with_link
            * richness
            * tag
            * entry_class
            * title
            * (1.0 - 0.9 * self.chrome)
            * (1.0 - 0.6 * self.side)
            * (1.0 - 0.8 * self.root_links)
            * (1.0 - 0.9 * self.huge)
            * containers
            * links
            * mixed
            * subset
    }
}

/// One member of a group, as the defaults of [`super::Selectors`] would read it.
struct Member {
    id: NodeId,
    /// Its first heading.
    heading: Option<NodeId>,
    /// How many headings with a link it holds: more than one, it holds entries.
    headings: usize,
    /// Its main link is in a heading or where a title is (`.release-header`).
    titled: bool,
    /// Its main link is its first heading's: the default title is the entry's.
    main_in_heading: bool,
    /// Its first heading's text (the default title).
    heading_text: Option<String>,
    /// The link the defaults take: the heading's, else the member itself, else its first.
    default_link: Option<NodeId>,
    /// The entry's link: the heading's, else the member itself, else the one with the
    /// longest text.
    main: Option<NodeId>,
    main_text: String,
    main_href: String,
    links: Vec<NodeId>,
    time: bool,
    paragraph: bool,
    /// Characters of text in all.
    text_chars: usize,
    /// Larger than [`SAMPLE_NODES`]: a part of the page, not an entry.
    huge: bool,
    /// The first element holding a date, and the attribute holding it (else its text).
    date: Option<(NodeId, Option<&'static str>)>,
}

/// Attributes that may hold an element's date.
const DATE_ATTRIBUTES: &[&str] = &["datetime", "title", "data-date", "data-time"];

impl Member {
    fn read(node: &NodeRef, work: &Cell<usize>, now: DateTime<Utc>) -> Member {
        let mut m = Member {
            id: node.id,
            heading: None,
            headings: 0,
            titled: false,
            main_in_heading: false,
            heading_text: None,
            default_link: None,
            main: None,
            main_text: String::new(),
            main_href: String::new(),
            links: Vec::new(),
            time: false,
            paragraph: false,
            text_chars: 0,
            huge: false,
            date: None,
        };
        // The first heading's first link (the defaults'), and its first with text (the
        // entry's: a heading's empty `a.anchor` is not).
        let mut heading_link = None;
        let mut heading_text_link = None;
        let mut title_link = None;
        let mut linked_headings: HashSet<NodeId> = HashSet::new();
        let mut first_link = None;
        let mut longest: Option<(usize, NodeId, String, String)> = None;
        let is_link = |n: &NodeRef| {
            n.node_name().is_some_and(|t| t.eq_ignore_ascii_case("a")) && n.has_attr("href")
        };
        let own_link = is_link(node);
        for (i, n) in std::iter::once(*node)
            .chain(node.descendants_it())
            .enumerate()
        {
            if work.get() >= MAX_WORK || i > SAMPLE_NODES {
                m.huge = true;
                break;
            }
            work.set(work.get() + 1);
            if n.is_text() {
                m.text_chars += n.text().trim().chars().count();
                continue;
            }
            if !n.is_element() {
                continue;
            }
            let tag = n
                .node_name()
                .map(|t| t.to_ascii_lowercase())
                .unwrap_or_default();
            let is_heading = matches!(tag.as_str(), "h1" | "h2" | "h3" | "h4" | "h5" | "h6");
            // A heading wrapped in a link (inside the member).
            let wrapping = || {
                n.ancestors_it(Some(8))
                    .take_while(|a| a.id != node.id)
                    .find(is_link)
                    .map(|a| a.id)
            };
            if is_heading && n.id != node.id && wrapping().is_some() {
                linked_headings.insert(n.id);
            }
            match tag.as_str() {
                "h1" | "h2" | "h3" | "h4" | "h5" | "h6"
                    if m.heading.is_none() && n.id != node.id =>
                {
                    m.heading = Some(n.id);
                    heading_link = wrapping();
                    heading_text_link = heading_link;
                }
                "time" => m.time = true,
                "p" => m.paragraph = true,
                _ => {}
            }
            if is_link(&n) {
                m.links.push(n.id);
                if n.id != node.id && first_link.is_none() {
                    first_link = Some(n.id);
                }
                let href = n
                    .attr("href")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_default();
                let text = bounded_text(&n, work);
                let usable = !text.is_empty() && href != "#" && !href.starts_with("javascript:");
                let in_heading = m
                    .heading
                    .is_some_and(|h| n.ancestors_it(Some(8)).any(|a| a.id == h));
                if in_heading && heading_link.is_none() {
                    heading_link = Some(n.id);
                }
                if in_heading && usable && heading_text_link.is_none() {
                    heading_text_link = Some(n.id);
                }
                if usable {
                    let headed = n
                        .ancestors_it(Some(8))
                        .take_while(|a| a.id != node.id)
                        .find(|a| {
                            a.node_name().is_some_and(|t| {
                                matches!(
                                    t.to_ascii_lowercase().as_str(),
                                    "h1" | "h2" | "h3" | "h4" | "h5" | "h6"
                                )
                            })
                        });
                    if let Some(h) = headed {
                        linked_headings.insert(h.id);
                    }
                    if title_link.is_none() && n.id != node.id && in_title_place(&n, node) {
                        title_link = Some(n.id);
                    }
                }
                if usable
                    && longest
                        .as_ref()
                        .is_none_or(|(l, ..)| text.chars().count() > *l)
                {
                    longest = Some((text.chars().count(), n.id, text, href));
                }
            }
            // The innermost element with the date: a date read from an element's text is
            // replaced by one inside it (`div.meta` "Posted on 2 Oct by Ann" gives way to its
            // `span.date`, a cell's text to its `span.age@title`).
            let replaceable = match m.date {
                None => true,
                Some((at, None)) => n.ancestors_it(Some(8)).any(|a| a.id == at),
                Some((_, Some(_))) => false,
            };
            if replaceable
                && !m.time
                && n.id != node.id
                && let Some(found) = date_in(&n, work, now)
            {
                m.date = Some(found);
            }
        }
        m.default_link = heading_link.or(own_link.then_some(node.id)).or(first_link);
        m.headings = linked_headings.len();
        m.titled = heading_text_link.is_some() || (!own_link && title_link.is_some());
        m.main_in_heading = heading_text_link.is_some();
        m.heading_text = m
            .heading
            .and_then(|h| node.tree.get(&h))
            .map(|h| bounded_text(&h, work));
        let main = heading_text_link
            .or(own_link.then_some(node.id))
            .or(title_link);
        match main {
            Some(id) => {
                if let Some(a) = node.tree.get(&id) {
                    m.main = Some(id);
                    m.main_text = bounded_text(&a, work);
                    m.main_href = a
                        .attr("href")
                        .map(|h| h.trim().to_string())
                        .unwrap_or_default();
                }
            }
            None => {
                if let Some((_, id, text, href)) = longest {
                    m.main = Some(id);
                    m.main_text = text;
                    m.main_href = href;
                }
            }
        }
        if m.main_text.is_empty() {
            m.main = None;
        }
        m
    }
}

impl Member {
    /// On a flat page an entry is a heading and the elements after it, up to the next one
    /// (as [`super::read`] reads it): their paragraphs, `<time>` and text count as its own.
    fn read_trailing(
        &mut self,
        node: &NodeRef,
        members: &HashSet<NodeId>,
        work: &Cell<usize>,
        now: DateTime<Utc>,
    ) {
        let mut at = node.next_element_sibling();
        for _ in 0..MAX_TRAILING {
            let Some(sibling) = at else {
                break;
            };
            if members.contains(&sibling.id) || work.get() >= MAX_WORK {
                break;
            }
            for d in std::iter::once(sibling)
                .chain(sibling.descendants_it())
                .take(SAMPLE_NODES / 10)
            {
                work.set(work.get() + 1);
                if d.is_text() {
                    self.text_chars += d.text().trim().chars().count();
                    continue;
                }
                match d.node_name().map(|t| t.to_ascii_lowercase()).as_deref() {
                    Some("p") => self.paragraph = true,
                    Some("time") => self.time = true,
                    _ => {}
                }
                // A date after the entry's element (a byline, the next row's age), the
                // innermost element holding it, as inside a member.
                let replaceable = match self.date {
                    None => true,
                    Some((at, None)) => d.ancestors_it(Some(8)).any(|a| a.id == at),
                    Some((_, Some(_))) => false,
                };
                if replaceable
                    && !self.time
                    && let Some(found) = date_in(&d, work, now)
                {
                    self.date = Some(found);
                }
            }
            at = sibling.next_element_sibling();
        }
    }
}

/// Elements after a flat page's heading looked at, at most (as [`super::read`] does).
const MAX_TRAILING: usize = 20;

/// Whether the element has a date: in one of [`DATE_ATTRIBUTES`] (preferred: it is
/// precise), else as its whole (short) text.
fn date_in(
    n: &NodeRef,
    work: &Cell<usize>,
    now: DateTime<Utc>,
) -> Option<(NodeId, Option<&'static str>)> {
    let parse = |t: &str| crate::feed::dates::parse_loose(t, None, chrono_tz::UTC, now);
    for a in DATE_ATTRIBUTES {
        if let Some(v) = n.attr(a)
            && v.len() <= 80
            && parse(&v).is_some()
        {
            return Some((n.id, Some(a)));
        }
    }
    // Only small elements: a date is a few words, perhaps in a link.
    if n.descendants_it().nth(8).is_some() {
        return None;
    }
    let text = bounded_text(n, work);
    (!text.is_empty() && text.len() <= 60 && parse(&text).is_some()).then_some((n.id, None))
}

/// An element's text, white space folded, read up to about 200 characters.
fn bounded_text(n: &NodeRef, work: &Cell<usize>) -> String {
    let mut out = String::new();
    for d in n.descendants_it().take(SAMPLE_NODES) {
        work.set(work.get() + 1);
        if d.is_text() {
            out.push_str(&d.text());
            out.push(' ');
            if out.len() > 200 {
                break;
            }
        }
    }
    super::folded(&out).unwrap_or_default()
}

/// Whether link `a` is where an entry's title is: it, or an element around it inside
/// `member`, has a class or id with one of [`TITLE_WORDS`] (`span.titleline > a`,
/// `.release-header a`), or is a `<header>`.
fn in_title_place(a: &NodeRef, member: &NodeRef) -> bool {
    std::iter::once(*a)
        .chain(a.ancestors_it(Some(8)).take_while(|x| x.id != member.id))
        .any(|x| {
            x.node_name()
                .is_some_and(|t| t.eq_ignore_ascii_case("header"))
                || x.class()
                    .map(|c| c.to_string())
                    .into_iter()
                    .chain(x.id_attr().map(|i| i.to_string()))
                    .any(|words| {
                        words
                            .split(|c: char| c.is_whitespace() || c == '-' || c == '_')
                            .any(|w| {
                                let w = w.to_ascii_lowercase();
                                TITLE_WORDS.iter().any(|t| w.starts_with(t))
                            })
                    })
        })
}

/// Whether `header`/`footer` `node` belongs to an entry (`<article><header>`), not the page.
fn within_entry(node: &NodeRef) -> bool {
    node.ancestors_it(Some(16)).any(|a| {
        a.node_name()
            .is_some_and(|t| t.eq_ignore_ascii_case("article") || t.eq_ignore_ascii_case("section"))
    })
}

/// A class or id usable in a selector as it is: a CSS identifier of ASCII letters, digits,
/// `-` and `_`, not starting with a digit (or `-` and a digit), 1 to 64 characters.
fn is_ident(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'))
        && !b[0].is_ascii_digit()
        && !(b[0] == b'-' && b.get(1).is_some_and(|c| c.is_ascii_digit() || *c == b'-'))
}

/// How much a class reads as the name of an entry (lower first): one with an entry word
/// (`post`), readable, short.
fn class_preference(class: &str) -> (bool, bool, usize) {
    (!has_entry_word(class), !is_readable(class), class.len())
}

/// Whether a class has a word that marks entries (`post`, `story`, `news-item`).
fn has_entry_word(class: &str) -> bool {
    class.split(['-', '_']).any(|w| {
        let w = w.to_ascii_lowercase();
        ENTRY_WORDS.iter().any(|e| w.starts_with(e))
    })
}

/// A class a person would write: no digits (those are often per entry, `post-123`, or
/// generated, `css-1x2y3z`), not a state (`active`, `odd`).
fn is_readable(s: &str) -> bool {
    !s.bytes().any(|c| c.is_ascii_digit())
        && !matches!(
            s,
            "active" | "odd" | "even" | "first" | "last" | "selected" | "current" | "clearfix"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-29T12:00:00Z")
            .expect("date")
            .with_timezone(&Utc)
    }

    fn page(body: &str) -> String {
        format!("<!doctype html><html><head><title>A Site</title></head><body>{body}</body></html>")
    }

    fn proposals(html: &str) -> Vec<Proposal> {
        let url = Url::parse("https://site.example/news/").expect("url");
        propose(html.as_bytes(), Some("text/html"), &url, now(), 5)
    }

    /// The best proposal, shown when the test fails.
    fn best(html: &str) -> Proposal {
        let all = proposals(html);
        for p in &all {
            eprintln!("{:.2} {:?}", p.score, p.selectors);
        }
        all.into_iter().next().expect("a proposal")
    }

    fn field(p: &Option<Pick>) -> Option<String> {
        p.as_ref().map(Pick::to_string)
    }

    fn date(s: &str) -> Option<DateTime<Utc>> {
        crate::feed::dates::parse(s)
    }

    const NAV: &str = r#"<header><a href="/"><img src="/logo.png" alt="Site"></a>
        <nav><ul><li><a href="/">Home</a></li><li><a href="/world/">World</a></li>
        <li><a href="/politics/">Politics</a></li><li><a href="/business/">Business</a></li>
        <li><a href="/tech/">Tech</a></li><li><a href="/science/">Science</a></li>
        <li><a href="/sport/">Sport</a></li><li><a href="/culture/">Culture</a></li>
        <li><a href="/about/">About</a></li></ul></nav></header>"#;

    const FOOTER: &str = r#"<footer><ul class="links"><li><a href="/privacy">Privacy policy</a></li>
        <li><a href="/terms">Terms of use</a></li><li><a href="/contact">Contact us</a></li>
        <li><a href="/jobs">Work with us</a></li></ul></footer>"#;

    #[test]
    fn a_news_section_of_articles() {
        let articles: String = (1..=6)
            .map(|i| {
                format!(
                    r#"<article class="story story-{i}"><h2><a href="/news/2026/story-{i}">Council votes on the new bridge, part {i}</a></h2>
                    <time datetime="2026-11-2{i}T08:00:00Z">November 2{i}</time>
                    <p>The council met on Tuesday to vote on the bridge plan number {i}.</p>
                    <a class="tag" href="/tags/local">Local</a></article>"#
                )
            })
            .collect();
        let html = page(&format!(
            r#"{NAV}<main><h1>News</h1>{articles}</main>
            <aside><article><h3><a href="/popular/1">Popular one</a></h3></article></aside>{FOOTER}"#
        ));
        let p = best(&html);
        assert!(
            ["article.story", "main article"].contains(&p.selectors.items.as_str()),
            "{:?}",
            p.selectors
        );
        // The defaults read heading, link and time right: no field selector.
        assert_eq!(p.selectors.title, None);
        assert_eq!(p.selectors.link, None);
        assert_eq!(p.selectors.date, None);
        assert_eq!(p.entries, 6);
        assert_eq!(p.page_title.as_deref(), Some("A Site"));
        assert_eq!(
            p.first[0],
            Sample {
                title: Some("Council votes on the new bridge, part 1".into()),
                link: Some("https://site.example/news/2026/story-1".into()),
                date: date("2026-11-21T08:00:00Z"),
            }
        );
    }

    #[test]
    fn a_blog_index_of_div_posts() {
        let posts: String = (1..=5)
            .map(|i| {
                format!(
                    r#"<div class="post post-{i} hentry"><h2 class="post-title"><a href="/blog/post-{i}.html">Notes on writing parsers, episode {i}</a></h2>
                    <div class="meta">Posted by <a href="/about" rel="author">Ann</a> on <span class="date">2026-10-0{i}</span></div>
                    <div class="body"><p>Some words about parsers.</p><p>More words.</p></div>
                    <a class="more" href="/blog/post-{i}.html">Read more</a></div>"#
                )
            })
            .collect();
        let html = page(&format!(
            r#"<div id="wrap">{NAV}<div id="content">{posts}</div>
            <div id="sidebar"><h3>Archives</h3><ul><li><a href="/2026/10/">October 2026</a></li>
            <li><a href="/2026/09/">September 2026</a></li><li><a href="/2026/08/">August 2026</a></li>
            <li><a href="/2026/07/">July 2026</a></li></ul></div></div>"#
        ));
        let p = best(&html);
        assert_eq!(p.selectors.items, "div.post", "{:?}", p.selectors);
        assert_eq!(p.selectors.title, None);
        assert_eq!(p.selectors.link, None);
        assert_eq!(field(&p.selectors.date).as_deref(), Some("span.date"));
        assert_eq!(p.entries, 5);
        assert_eq!(
            p.first[1],
            Sample {
                title: Some("Notes on writing parsers, episode 2".into()),
                link: Some("https://site.example/blog/post-2.html".into()),
                date: date("2026-10-02"),
            }
        );
    }

    /// WordPress: every post has its own class (`post-12`) and its category's; one
    /// category's posts are not offered apart from all of them.
    #[test]
    fn wordpress_posts_with_per_post_classes() {
        let posts: String = (1..=8)
            .map(|i| {
                let category = if i % 2 == 0 { "news" } else { "notes" };
                format!(
                    r#"<article id="post-{i}" class="post-{i} post type-post status-publish format-standard hentry category-{category}">
                    <header class="entry-header"><h2 class="entry-title"><a href="/2026/11/post-{i}/" rel="bookmark">A post about something, number {i}</a></h2></header>
                    <div class="entry-summary"><p>Excerpt {i}.</p></div>
                    <footer class="entry-footer"><span class="posted-on"><a href="/2026/11/post-{i}/"><time class="entry-date published" datetime="2026-11-0{i}T09:00:00+00:00">November {i}, 2026</time></a></span>
                    <span class="cat-links"><a href="/category/{category}/">{category}</a></span></footer></article>"#
                )
            })
            .collect();
        let html = page(&format!(
            r#"<body class="home blog hfeed has-sidebar"><div id="page" class="site">{NAV}<div id="content" class="site-content">
            <main id="main" class="site-main">{posts}</main>
            <aside id="secondary" class="widget-area"><section class="widget"><h2>Recent</h2><ul>
            <li><a href="/2026/11/post-1/">A post about something, number 1</a></li><li><a href="/2026/11/post-2/">A post about something, number 2</a></li>
            <li><a href="/2026/11/post-3/">A post about something, number 3</a></li></ul></section></aside></div></div>"#
        ));
        let all = proposals(&html);
        for p in &all {
            eprintln!("{:.2} {:?}", p.score, p.selectors);
        }
        assert_eq!(
            all[0].selectors.items, "article.post",
            "{:?}",
            all[0].selectors
        );
        assert_eq!(all[0].selectors.date, None);
        assert_eq!(all[0].entries, 8);
        assert_eq!(all[0].first[0].date, date("2026-11-01T09:00:00Z"));
        assert_eq!(all.len(), 1, "no category apart, no sidebar");
    }

    /// Hacker News' front page, as it is: each story a `tr.athing` (rank, vote link, title
    /// link and site), its points and age on the next row, then a spacer row.
    #[test]
    fn a_link_aggregator_table_like_hacker_news() {
        let rows: String = (1..=8)
            .map(|i| {
                format!(
                    r#"<tr class="athing submission" id="4200{i}"><td align="right" valign="top" class="title"><span class="rank">{i}.</span></td>
                    <td valign="top" class="votelinks"><center><a id="up_4200{i}" href="vote?id=4200{i}&amp;how=up&amp;goto=news"><div class="votearrow" title="upvote"></div></a></center></td>
                    <td class="title"><span class="titleline"><a href="https://other{i}.example/post">Show HN: A thing I made, number {i}</a><span class="sitebit comhead"> (<a href="from?site=other{i}.example"><span class="sitestr">other{i}.example</span></a>)</span></span></td></tr>
                    <tr><td colspan="2"></td><td class="subtext"><span class="subline"><span class="score" id="score_4200{i}">{i}0 points</span> by <a href="user?id=u{i}" class="hnuser">u{i}</a>
                    <span class="age" title="2026-11-29T0{i}:00:00 178000000{i}"><a href="item?id=4200{i}">{i} hours ago</a></span> | <a href="hide?id=4200{i}&amp;goto=news">hide</a> | <a href="item?id=4200{i}">{i}2&nbsp;comments</a></span></td></tr>
                    <tr class="spacer" style="height:5px"></tr>"#
                )
            })
            .collect();
        let html = page(&format!(
            r#"<center><table id="hnmain"><tr><td><table><tr><td><a href="https://news.ycombinator.com"><img src="y18.svg"></a></td>
            <td><span class="pagetop"><b class="hnname"><a href="news">Hacker News</a></b>
            <a href="newest">new</a> | <a href="front">past</a> | <a href="newcomments">comments</a> | <a href="ask">ask</a> | <a href="show">show</a> | <a href="jobs">jobs</a> | <a href="submit">submit</a></span></td></tr></table></td></tr>
            <tr id="bigbox"><td><table class="itemlist">{rows}</table></td></tr></table></center>"#
        ));
        let url = Url::parse("https://news.ycombinator.com/").expect("url");
        let all = propose(html.as_bytes(), Some("text/html"), &url, now(), 5);
        for p in &all {
            eprintln!("{:.2} {:?}", p.score, p.selectors);
        }
        let p = &all[0];
        assert_eq!(p.selectors.items, "tr.athing", "{:?}", p.selectors);
        assert_eq!(
            field(&p.selectors.title).as_deref(),
            Some("span.titleline > a")
        );
        assert_eq!(
            field(&p.selectors.link).as_deref(),
            Some("span.titleline > a")
        );
        assert_eq!(p.entries, 8);
        assert_eq!(
            p.first[0].title.as_deref(),
            Some("Show HN: A thing I made, number 1")
        );
        // Links to other sites are what an aggregator is for.
        assert_eq!(
            p.first[2].link.as_deref(),
            Some("https://other3.example/post")
        );
    }

    /// An aggregator whose rows hold their age: read from the `title` attribute, exact,
    /// rather than from "3 hours ago".
    #[test]
    fn ages_in_a_title_attribute() {
        let rows: String = (1..=5)
            .map(|i| {
                format!(
                    r#"<tr class="story"><td class="votes"><a href="/vote/{i}">▲</a></td>
                    <td><a class="titlelink" href="https://far{i}.example/a">A long story title number {i}</a>
                    <span class="age" title="2026-11-2{i}T10:00:00Z">{i} days ago</span>
                    <a href="/c/{i}">{i} comments</a></td></tr>"#
                )
            })
            .collect();
        let html = page(&format!("<table>{rows}</table>"));
        let p = best(&html);
        assert_eq!(p.selectors.items, "tr.story", "{:?}", p.selectors);
        assert_eq!(field(&p.selectors.title).as_deref(), Some("a.titlelink"));
        assert_eq!(field(&p.selectors.link).as_deref(), Some("a.titlelink"));
        assert_eq!(field(&p.selectors.date).as_deref(), Some("span.age@title"));
        assert_eq!(p.first[2].date, date("2026-11-23T10:00:00Z"));
    }

    /// A changelog: a heading per version, linking to its own anchor, the date after it
    /// (read by the defaults: the elements after a heading up to the next belong to it).
    #[test]
    fn a_releases_page_of_headings_with_anchors() {
        let versions: String = (0..5)
            .map(|i| {
                format!(
                    r##"<h2 id="v1.{v}.0"><a class="anchor" href="#v1.{v}.0">v1.{v}.0</a></h2>
                    <p>Released <time datetime="2026-0{m}-01">2026-0{m}-01</time>.</p>
                    <ul><li>Fixed a crash on empty input (<a href="https://github.com/o/r/pull/{v}1">#{v}1</a>)</li>
                    <li>Faster startup (<a href="https://github.com/o/r/pull/{v}2">#{v}2</a>)</li>
                    <li>Docs (<a href="https://github.com/o/r/pull/{v}3">#{v}3</a>)</li></ul>"##,
                    v = 5 - i,
                    m = 9 - i
                )
            })
            .collect();
        let html = page(&format!(
            r#"{NAV}<main><h1>Changelog</h1><div class="markdown-body">{versions}</div></main>{FOOTER}"#
        ));
        let url = Url::parse("https://site.example/changelog").expect("url");
        let all = propose(html.as_bytes(), Some("text/html"), &url, now(), 5);
        for p in &all {
            eprintln!("{:.2} {:?} {:?}", p.score, p.selectors, p.first);
        }
        let p = &all[0];
        assert_eq!(p.selectors.items, "h2", "{:?}", p.selectors);
        assert_eq!(p.entries, 5);
        assert_eq!(
            p.first[0],
            Sample {
                title: Some("v1.5.0".into()),
                link: Some("https://site.example/changelog#v1.5.0".into()),
                // The `<time>` after the heading, up to the next one (a flat page).
                date: date("2026-09-01"),
            }
        );
        assert_eq!(
            p.first[1].link.as_deref(),
            Some("https://site.example/changelog#v1.4.0")
        );
    }

    #[test]
    fn a_list_of_links_with_dates() {
        let items: String = (1..=7)
            .map(|i| {
                format!(
                    r#"<li><a href="/releases/{i}">Release notes for the spring update {i}</a> <span class="when">2026-03-0{i}</span></li>"#
                )
            })
            .collect();
        let html = page(&format!(
            r#"{NAV}<div class="content"><h1>Releases</h1><ul class="releases">{items}</ul></div>{FOOTER}"#
        ));
        let p = best(&html);
        assert_eq!(p.selectors.items, "ul.releases > li", "{:?}", p.selectors);
        assert_eq!(p.selectors.title, None);
        assert_eq!(p.selectors.link, None);
        assert_eq!(field(&p.selectors.date).as_deref(), Some("span.when"));
        assert_eq!(p.entries, 7);
        assert_eq!(p.first[2].date, date("2026-03-03"));
        assert_eq!(
            p.first[2].link.as_deref(),
            Some("https://site.example/releases/3")
        );
    }

    /// The menu has nine links and the content four: the content wins, and the menu is
    /// not even offered.
    #[test]
    fn a_navigation_menu_with_more_links_does_not_win() {
        let cards: String = (1..=4)
            .map(|i| {
                format!(
                    r#"<div class="card"><h3><a href="/p/{i}">A slightly longer headline here {i}</a></h3><p>Text {i}.</p></div>"#
                )
            })
            .collect();
        // A second menu without a <nav>: only its class says what it is.
        let menu = r#"<ul class="menu"><li><a href="/">Home</a></li><li><a href="/a">Alpha</a></li>
            <li><a href="/b">Beta</a></li><li><a href="/c">Gamma</a></li><li><a href="/d">Delta</a></li></ul>"#;
        let html = page(&format!(
            "{NAV}{menu}<div class=\"grid\">{cards}</div>{FOOTER}"
        ));
        let all = proposals(&html);
        for p in &all {
            eprintln!("{:.2} {:?}", p.score, p.selectors);
        }
        assert_eq!(all[0].selectors.items, "div.card");
        assert_eq!(all[0].entries, 4);
        assert_eq!(all.len(), 1, "menus are not offered beside entries");
    }

    #[test]
    fn a_page_without_repeated_entries_gets_no_proposal() {
        let html = page("<h1>Hello</h1><p>Just a page with <a href=\"/x\">one link</a>.</p>");
        assert!(proposals(&html).is_empty());
        assert!(proposals("").is_empty());
        assert!(
            propose(
                b"\x00\xff\xfe binary",
                None,
                &Url::parse("https://x.example/").expect("url"),
                now(),
                3
            )
            .is_empty()
        );
    }

    /// A utility class used all over the page (`flex`) makes no group of its own; the
    /// entries that carry it are found as siblings.
    #[test]
    fn utility_classes_all_over_are_not_a_pattern() {
        let items: String = (1..=5)
            .map(|i| {
                format!(
                    r#"<li class="flex p-4"><div class="flex"><a class="font-bold" href="/p/{i}">An entry title long enough {i}</a></div>
                    <div class="flex text-sm"><time datetime="2026-10-0{i}">Oct {i}</time></div></li>"#
                )
            })
            .collect();
        let html = page(&format!(
            r#"<div class="flex"><div class="flex"><a href="/">Home</a></div><div class="flex"><a href="/x">X</a></div></div>
            <ul class="flex flex-col">{items}</ul><div class="flex"><p>Footer text</p></div>"#
        ));
        let all = proposals(&html);
        for p in &all {
            eprintln!("{:.2} {:?}", p.score, p.selectors);
        }
        assert_eq!(all[0].selectors.items, "li", "{:?}", all[0].selectors);
        assert_eq!(all[0].entries, 5);
        assert!(all.iter().all(|p| !p.selectors.items.contains("div.flex")));
    }

    /// Columns holding the articles repeat too, but they are parts of the page.
    #[test]
    fn columns_of_articles_give_the_articles() {
        let column = |c: usize| -> String {
            let articles: String = (1..=4)
                .map(|i| {
                    format!(
                        r#"<article><h3><a href="/c{c}/a{i}">Column {c} article number {i} title</a></h3><p>Words.</p></article>"#
                    )
                })
                .collect();
            format!(r#"<div class="column"><h2>Section {c}</h2>{articles}</div>"#)
        };
        let html = page(&format!("{NAV}{}{}{}", column(1), column(2), column(3)));
        let all = proposals(&html);
        for p in &all {
            eprintln!("{:.2} {:?}", p.score, p.selectors);
        }
        assert_eq!(all[0].selectors.items, "article", "{:?}", all[0].selectors);
        assert_eq!(all[0].entries, 12);
        assert_eq!(all.len(), 1, "the columns are far behind");
    }

    /// A page past the element bound is read up to it, quickly, without a panic.
    #[test]
    fn work_is_bounded() {
        let many: String = (0..(MAX_ELEMENTS + 5_000))
            .map(|i| format!("<li><a href=\"/x/{i}\">An entry with a title {i}</a></li>"))
            .collect();
        let html = page(&format!("<ul>{many}</ul>"));
        let started = std::time::Instant::now();
        let all = proposals(&html);
        assert!(!all.is_empty());
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
        // Deep nesting is bounded before parsing.
        let deep = format!("{}x{}", "<div>".repeat(100_000), "</div>".repeat(100_000));
        assert!(proposals(&deep).is_empty());
    }
}

/// The saved real listing pages of `tests/fixtures/pages/listing/` (SOURCES.md there gives
/// each page's URL, its right `items` and its entries).
#[cfg(test)]
mod saved_pages {
    use super::*;

    struct Expected {
        file: &'static str,
        url: &'static str,
        content_type: &'static str,
        /// The right proposal's entries, its first entry's title, link and date.
        entries: usize,
        title: &'static str,
        link: &'static str,
        date: Option<&'static str>,
        /// Whether the right proposal must be the first (else among the proposals).
        first: bool,
    }

    const PAGES: &[Expected] = &[
        Expected {
            file: "news-section.html",
            url: "https://www.chip.de/tests/akkuschrauber-werkzeug-co,82197/5",
            content_type: "text/html; charset=utf-8",
            entries: 20,
            title: "Aldi leuchtet: LED-Röhren-Testsieger im Angebot",
            link: "https://www.chip.de/news/Aldi-leuchtet-LED-Roehren-Testsieger-im-Angebot_152842829.html",
            // Written `2018-11-12 15:58:00`; a proposal has no time zone: UTC.
            date: Some("2018-11-12T15:58:00Z"),
            first: true,
        },
        Expected {
            file: "blog-index.html",
            url: "http://www.echte-demokratie-jetzt.de/blog/",
            content_type: "text/html; charset=utf-8",
            entries: 10,
            title: "Liebe Menschen Europas",
            link: "http://www.echte-demokratie-jetzt.de/2014/01/liebe-menschen-europas/",
            date: Some("2014-01-13T00:00:00Z"),
            first: true,
        },
        Expected {
            file: "link-aggregator.html",
            url: "https://news.ycombinator.com/",
            content_type: "text/html; charset=utf-8",
            entries: 30,
            title: "The West Forgot How to Make Things. Now It's Forgetting How to Code",
            link: "https://techtrenches.dev/p/the-west-forgot-how-to-make-things",
            date: None,
            first: true,
        },
        Expected {
            file: "releases.html",
            url: "https://github.com/nuxt/nuxt.js/releases",
            content_type: "text/html; charset=utf-8",
            entries: 10,
            title: "v2.10.2",
            link: "https://github.com/nuxt/nuxt.js/releases/tag/v2.10.2",
            date: Some("2019-10-21T21:18:53Z"),
            first: true,
        },
        Expected {
            file: "headings-time.html",
            url: "https://raptastisch.net/2023/11/06/bushido-antwortet-auf-seitenhieb-von-azad-und-erklaert-ihn-fuer-finished/",
            content_type: "text/html; charset=utf-8",
            entries: 15,
            title: "Kranke Zahlen – Bushido führt im privaten Verkaufsbattle gegen Bonez MC",
            link: "https://raptastisch.net/2023/11/06/kranke-zahlen-bushido-fuehrt-im-privaten-verkaufsbattle-gegen-bonez-mc/",
            date: Some("2023-11-06T11:25:04+01:00"),
            // A sidebar's "recent posts" on an article page: offered, first or not.
            first: false,
        },
        Expected {
            file: "cp1252.html",
            url: "https://www.automobilwoche.de/article/20211103/AGENTURMELDUNGEN/311039909/1276/krach-vor-der-vw-betriebsversammlung-es-knirscht-zwischen-diess-und-aufsichtsraeten",
            // No charset: the page's `<meta charset="windows-1252">` decides.
            content_type: "text/html",
            entries: 12,
            title: "IT-Auslagerung bei Daimler startet holprig",
            link: "https://www.automobilwoche.de/article/20211103/BCONLINE/211109964/1276/exklusiv--mitarbeiter-lehnen-transfer-ab-it-auslagerung-bei-daimler-startet-holprig",
            date: None,
            first: true,
        },
        Expected {
            file: "flat-lwn.html",
            url: "https://lwn.net/Articles/637393/",
            content_type: "text/html; charset=utf-8",
            entries: 3,
            title: "A trademark battle in the Arduino community",
            link: "https://lwn.net/Articles/637755/",
            date: None,
            first: true,
        },
    ];

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-29T12:00:00Z")
            .expect("date")
            .with_timezone(&Utc)
    }

    /// [`proposals_for`] the saved page `file`.
    fn proposals_for_file(file: &str) -> Vec<Proposal> {
        let page = PAGES.iter().find(|p| p.file == file).expect("the page");
        proposals_for(page)
    }

    fn proposals_for(page: &Expected) -> Vec<Proposal> {
        let path = format!(
            "{}/tests/fixtures/pages/listing/{}",
            env!("CARGO_MANIFEST_DIR"),
            page.file
        );
        let bytes = std::fs::read(&path).expect("the saved page");
        let url = Url::parse(page.url).expect("url");
        propose(&bytes, Some(page.content_type), &url, now(), 5)
    }

    /// Whether `p` gives the page's right entries (its `items` or one giving the same).
    fn is_right(p: &Proposal, page: &Expected) -> bool {
        let first = p.first.first();
        p.entries == page.entries
            && first.and_then(|s| s.title.as_deref()) == Some(page.title)
            && first.and_then(|s| s.link.as_deref()) == Some(page.link)
    }

    #[test]
    fn each_saved_page_gets_its_entries_proposed() {
        let mut wrong = Vec::new();
        for page in PAGES {
            let all = proposals_for(page);
            let shown: Vec<String> = all
                .iter()
                .map(|p| {
                    format!(
                        "{:.2} {} ({} entries, first {:?})",
                        p.score,
                        p.selectors.items,
                        p.entries,
                        p.first.first()
                    )
                })
                .collect();
            let at = all.iter().position(|p| is_right(p, page));
            let ok = match at {
                Some(0) => true,
                Some(_) => !page.first,
                None => false,
            };
            if !ok {
                wrong.push(format!("{}: right one at {at:?} of {shown:#?}", page.file));
                continue;
            }
            if let (Some(i), Some(d)) = (at, page.date) {
                let expected = DateTime::parse_from_rfc3339(d).expect("date");
                assert_eq!(
                    all[i].first.first().and_then(|s| s.date),
                    Some(expected.with_timezone(&Utc)),
                    "{}: {:?}",
                    page.file,
                    all[i].selectors
                );
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    /// Hacker News: the stories, not the rows' usernames, ages and domains.
    #[test]
    fn an_aggregator_offers_its_stories_alone() {
        let all = proposals_for_file("link-aggregator.html");
        let items: Vec<&str> = all.iter().map(|p| p.selectors.items.as_str()).collect();
        assert_eq!(items, ["tr.athing"]);
        // The age is in the next row: read from there, as the reader reads a row's span.
        assert_eq!(
            all[0]
                .selectors
                .date
                .as_ref()
                .map(Pick::to_string)
                .as_deref(),
            Some("span.age@title")
        );
        assert!(all[0].first.iter().all(|e| e.date.is_some()));
    }

    /// LWN's weekly edition: each article is a heading and what follows it; the date is in
    /// the byline after the heading.
    #[test]
    fn a_flat_page_gets_the_date_after_its_headings() {
        let all = proposals_for_file("flat-lwn.html");
        assert_eq!(all[0].selectors.items, "h2.SummaryHL");
        assert_eq!(
            all[0]
                .selectors
                .date
                .as_ref()
                .map(Pick::to_string)
                .as_deref(),
            Some("div.FeatureByline")
        );
        assert!(all[0].first.iter().all(|e| e.date.is_some()));
    }

    /// A WordPress index: all posts (`div.post`), not one category's (`div.category-film`)
    /// nor the posts and the pager (`#content > div`).
    #[test]
    fn a_blog_index_offers_all_posts_first() {
        let all = proposals_for_file("blog-index.html");
        assert_eq!(all[0].selectors.items, "div.post", "{:?}", all[0].selectors);
        assert!(all.iter().all(|p| !p.selectors.items.contains("category")));
    }
}
