//! How text becomes index terms (and query words become the same terms): words are runs of
//! letters and digits; text in Chinese, Japanese or Korean, which does not separate its
//! words, becomes overlapping pairs of characters ("東京都" → "東京", "京都"), as Lucene's
//! CJK analyzer does, so a word of two or more characters is found by the pairs it is made
//! of; then every term is lowercased and its accents folded ("Café" → "cafe"), and a term
//! longer than [`MAX_TERM_BYTES`] (a base64 blob, a run of digits) is dropped.
//!
//! One token buffer is reused for every token, as tantivy's own tokenizers do: indexing a
//! million entries makes hundreds of millions of tokens.

use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, TextAnalyzer, Token, TokenStream, Tokenizer,
};

/// The name the analyzer is registered under in the index.
pub const NAME: &str = "words";

/// Terms of this many bytes or more (before folding) are not indexed.
pub const MAX_TERM_BYTES: usize = 64;

/// The analyzer of every text field, and of query words.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(Words::default())
        .filter(RemoveLongFilter::limit(MAX_TERM_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// The terms `text` makes, in order: what a query word or phrase is looked up by.
pub fn terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// The name of the analyzer of word pairs (see [`pairs`]).
pub const PAIRS: &str = "pairs";

/// The analyzer of word pairs: each two neighbouring terms of [`analyzer`] as one term
/// ("write ahead log" → "write ahead", "ahead log"). A phrase is looked up by its pairs
/// first, so its positions are read only in the few entries that have all of them.
pub fn pairs() -> TextAnalyzer {
    TextAnalyzer::from(Pairs {
        words: analyzer(),
        token: Token::default(),
    })
}

/// The pair terms of `terms` (a phrase's, in order).
pub fn pair_terms(terms: &[String]) -> Vec<String> {
    terms
        .windows(2)
        .map(|w| format!("{} {}", w[0], w[1]))
        .collect()
}

/// Each two neighbouring words of the word analyzer as one token.
#[derive(Clone)]
pub struct Pairs {
    words: TextAnalyzer,
    token: Token,
}

/// The pair tokens of one text.
pub struct PairStream<'a> {
    words: tantivy::tokenizer::BoxTokenStream<'a>,
    token: &'a mut Token,
    previous: String,
}

impl Tokenizer for Pairs {
    type TokenStream<'a> = PairStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> PairStream<'a> {
        self.token.reset();
        PairStream {
            words: self.words.token_stream(text),
            token: &mut self.token,
            previous: String::new(),
        }
    }
}

impl TokenStream for PairStream<'_> {
    fn advance(&mut self) -> bool {
        while self.words.advance() {
            let word = self.words.token();
            if self.previous.is_empty() {
                self.previous.push_str(&word.text);
                continue;
            }
            self.token.text.clear();
            self.token.text.push_str(&self.previous);
            self.token.text.push(' ');
            self.token.text.push_str(&word.text);
            self.token.offset_from = word.offset_from;
            self.token.offset_to = word.offset_to;
            self.token.position = self.token.position.wrapping_add(1);
            self.previous.clear();
            self.previous.push_str(&word.text);
            return true;
        }
        false
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

/// Splits text into words, and CJK runs into pairs of characters.
#[derive(Clone, Default)]
pub struct Words {
    token: Token,
}

/// The tokens of one text.
pub struct WordStream<'a> {
    text: &'a str,
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    token: &'a mut Token,
    /// In a CJK run: where its last character starts (the next pair starts there).
    run: Option<usize>,
}

impl Tokenizer for Words {
    type TokenStream<'a> = WordStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordStream<'a> {
        self.token.reset();
        WordStream {
            text,
            chars: text.char_indices().peekable(),
            token: &mut self.token,
            run: None,
        }
    }
}

impl WordStream<'_> {
    fn emit(&mut self, from: usize, to: usize) -> bool {
        self.token.offset_from = from;
        self.token.offset_to = to;
        self.token.position = self.token.position.wrapping_add(1);
        self.token.text.push_str(&self.text[from..to]);
        true
    }

    /// The next character if it is CJK: consumed, with where it ends.
    fn next_cjk(&mut self) -> Option<(usize, usize)> {
        let &(at, c) = self.chars.peek()?;
        if !is_cjk(c) {
            return None;
        }
        self.chars.next();
        Some((at, at + c.len_utf8()))
    }
}

impl TokenStream for WordStream<'_> {
    fn advance(&mut self) -> bool {
        self.token.text.clear();
        // A CJK run goes on: the pair of its last character and the next.
        if let Some(from) = self.run.take()
            && let Some((at, end)) = self.next_cjk()
        {
            self.run = Some(at);
            return self.emit(from, end);
        }
        while let Some((from, c)) = self.chars.next() {
            if is_cjk(c) {
                // The first pair of a run, or a character alone.
                return match self.next_cjk() {
                    Some((at, end)) => {
                        self.run = Some(at);
                        self.emit(from, end)
                    }
                    None => self.emit(from, from + c.len_utf8()),
                };
            }
            if c.is_alphanumeric() {
                let mut end = from + c.len_utf8();
                while let Some(&(at, c)) = self.chars.peek() {
                    if !c.is_alphanumeric() || is_cjk(c) {
                        break;
                    }
                    self.chars.next();
                    end = at + c.len_utf8();
                }
                return self.emit(from, end);
            }
        }
        false
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

/// Whether `c` is written in a script that does not separate words with spaces (Han,
/// Hiragana, Katakana) or is indexed the same way (Hangul, as Lucene's CJK analyzer does).
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x11FF       // Hangul Jamo
        | 0x2E80..=0x2FDF     // CJK radicals
        | 0x3040..=0x30FF     // Hiragana, Katakana
        | 0x3130..=0x318F     // Hangul compatibility Jamo
        | 0x31F0..=0x31FF     // Katakana phonetic extensions
        | 0x3400..=0x4DBF     // CJK extension A
        | 0x4E00..=0x9FFF     // CJK unified ideographs
        | 0xAC00..=0xD7AF     // Hangul syllables
        | 0xF900..=0xFAFF     // CJK compatibility ideographs
        | 0xFF66..=0xFF9F     // halfwidth Katakana
        | 0x20000..=0x323AF   // CJK extensions B to H
    )
}

#[cfg(test)]
mod tests {
    use super::{analyzer, terms};

    fn t(text: &str) -> Vec<String> {
        terms(&mut analyzer(), text)
    }

    #[test]
    fn words_are_lowercased_and_folded() {
        assert_eq!(
            t("Café au LAIT, naïve—façade!"),
            ["cafe", "au", "lait", "naive", "facade"]
        );
        assert_eq!(
            t("sled's 0.34 release"),
            ["sled", "s", "0", "34", "release"]
        );
        assert_eq!(t("Straße Ærøskøbing"), ["strasse", "aeroskobing"]);
    }

    #[test]
    fn cjk_runs_become_overlapping_pairs() {
        assert_eq!(t("東京都"), ["東京", "京都"]);
        assert_eq!(
            t("日本語のテキスト"),
            ["日本", "本語", "語の", "のテ", "テキ", "キス", "スト"]
        );
        assert_eq!(t("한국어"), ["한국", "국어"]);
        // A character alone is a term; a run stops at other text.
        assert_eq!(t("Rust言語 と sled"), ["rust", "言語", "と", "sled"]);
        assert_eq!(t("中"), ["中"]);
    }

    #[test]
    fn positions_follow_the_terms() {
        let mut a = analyzer();
        let mut stream = a.token_stream("東京都 in Kyoto");
        let mut seen = Vec::new();
        while stream.advance() {
            let t = stream.token();
            seen.push((t.text.clone(), t.position));
        }
        let want = [("東京", 0), ("京都", 1), ("in", 2), ("kyoto", 3)];
        assert_eq!(seen, want.map(|(t, p)| (t.to_string(), p)));
    }

    #[test]
    fn pairs_are_neighbouring_words() {
        let mut a = super::pairs();
        assert_eq!(
            terms(&mut a, "Write-ahead LOG, sled"),
            ["write ahead", "ahead log", "log sled"]
        );
        assert_eq!(terms(&mut a, "東京都"), ["東京 京都"]);
        assert!(terms(&mut a, "one").is_empty());
        let words = t("Write ahead log");
        assert_eq!(super::pair_terms(&words), ["write ahead", "ahead log"]);
    }

    #[test]
    fn long_runs_are_dropped_and_nothing_panics() {
        let blob = "A".repeat(200);
        assert_eq!(t(&format!("x {blob} y")), ["x", "y"]);
        assert!(t("").is_empty());
        assert!(t("  \u{0}\u{200b} -- !!").is_empty());
        // Emoji and combining marks: no panic, nothing odd.
        assert_eq!(t("e\u{301}te 🦀 ok").last().map(String::as_str), Some("ok"));
    }
}
