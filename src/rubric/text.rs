//! Keyword matching on folded text.
//!
//! Models decorate answers freely ("**Red**.", "0131-555-6363", "High-Time Coffee Shop"), so
//! keywords are compared after the same folding is applied to both sides. Folding keeps a map
//! back to the raw answer so a verdict can show the text exactly as the model wrote it.

/// How keywords and answers are normalised before comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FoldOptions {
    pub case_sensitive: bool,
    pub fold_punctuation: bool,
}

/// Text after folding, with the raw byte span each folded byte came from.
#[derive(Debug, Default)]
pub(super) struct Folded {
    pub text: String,
    /// `src[k]` is the raw `(start, end)` of the character that produced folded byte `k`.
    src: Vec<(usize, usize)>,
}

impl Folded {
    fn push(&mut self, c: char, span: (usize, usize)) {
        self.text.push(c);
        self.src.extend(std::iter::repeat_n(span, c.len_utf8()));
    }

    /// Raw byte span of the folded range `start..end` (non-empty).
    pub fn raw_span(&self, start: usize, end: usize) -> (usize, usize) {
        (self.src[start].0, self.src[end - 1].1)
    }
}

/// Folds `s`: lowercases unless case-sensitive and, when folding punctuation, turns every run
/// of non-word characters into one space and trims the ends. Lowercasing is per character (not
/// `str::to_lowercase`) so that keyword and answer fold identically whatever surrounds them.
pub(super) fn fold(s: &str, opts: FoldOptions) -> Folded {
    let mut out = Folded::default();
    let mut gap = None;
    for (i, c) in s.char_indices() {
        let span = (i, i + c.len_utf8());
        if opts.fold_punctuation && !is_word_char(c) {
            if !out.text.is_empty() {
                gap.get_or_insert(span);
            }
            continue;
        }
        if let Some(g) = gap.take() {
            out.push(' ', g);
        }
        if opts.case_sensitive {
            out.push(c, span);
        } else {
            for l in c.to_lowercase() {
                out.push(l, span);
            }
        }
    }
    out
}

/// Finds `needle` (already folded) in `hay` at word boundaries; returns the raw span.
pub(super) fn find(hay: &Folded, needle: &str) -> Option<(usize, usize)> {
    let (first, last) = (needle.chars().next()?, needle.chars().next_back()?);
    let text = hay.text.as_str();
    let mut from = 0;
    while let Some(pos) = text[from..].find(needle) {
        let (start, end) = (from + pos, from + pos + needle.len());
        let before = text[..start].chars().next_back();
        let after = text[end..].chars().next();
        if !before.is_some_and(|b| joins(b, first)) && !after.is_some_and(|a| joins(last, a)) {
            return Some(hay.raw_span(start, end));
        }
        from = start + first.len_utf8();
    }
    None
}

/// Whether two adjacent characters belong to the same word, so that a match may not start or
/// end between them ("red" is not in "bored"). Han and kana are written without spaces, so
/// each of those characters counts as a word of its own.
fn joins(a: char, b: char) -> bool {
    let word = |c: char| is_word_char(c) && !is_unspaced_script(c);
    word(a) && word(b)
}

/// Letters, digits and combining marks (so decomposed "é" stays one word).
pub(super) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
        || matches!(c, '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}')
        || matches!(c, '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}')
}

fn is_unspaced_script(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FF}' | '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{2FA1F}')
}

/// The answer's words as the study counted terseness: whitespace-separated tokens that contain
/// a letter or digit, so list bullets and a lone "=" do not count.
pub(super) fn count_words(s: &str) -> usize {
    s.split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count()
}

/// The stretch of the answer most like `keyword`, if close enough to be a likely typo or OCR
/// slip ("Coppala" for "Coppola"): it turns a bare "missing" into something actionable.
pub(super) fn closest(answer: &str, keyword: &str) -> Option<String> {
    const MIN_SIMILARITY: f64 = 0.7;
    let opts = FoldOptions {
        case_sensitive: false,
        fold_punctuation: true,
    };
    let (hay, needle) = (fold(answer, opts), fold(keyword, opts).text);
    let n = needle.split(' ').count();
    let mut words = Vec::new();
    let mut start = 0;
    for (i, _) in hay.text.match_indices(' ').chain([(hay.text.len(), "")]) {
        words.push((start, i));
        start = i + 1;
    }
    if needle.is_empty() || hay.text.is_empty() || words.len() < n {
        return None;
    }
    let (score, (s, e)) = words
        .windows(n)
        .map(|w| (w[0].0, w[n - 1].1))
        .map(|(s, e)| {
            (
                strsim::normalized_levenshtein(&hay.text[s..e], &needle),
                (s, e),
            )
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))?;
    let (rs, re) = hay.raw_span(s, e);
    (score >= MIN_SIMILARITY).then(|| answer[rs..re].to_string())
}

/// A short, quoted rendering of answer text for one-line details.
pub(super) fn quote(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        format!("{:?}…", s.chars().take(MAX).collect::<String>())
    }
}

/// Wraps `text` for the terminal, keeping the model's own line breaks and indentation on lines
/// that already fit (code output must stay readable).
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.chars().count() <= width {
            out.push(line.trim_end().to_string());
            continue;
        }
        let mut cur = String::new();
        for word in line.split_whitespace() {
            if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
                out.push(std::mem::take(&mut cur));
            }
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(word);
        }
        out.push(cur);
    }
    out
}
