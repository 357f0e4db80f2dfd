use rstest::rstest;

use super::numbers::extract_numbers;
use super::*;

fn rubric(toml_src: &str) -> Rubric {
    let r: Rubric = toml::from_str(toml_src).unwrap_or_else(|e| panic!("{toml_src}: {e}"));
    r.validate().unwrap_or_else(|e| panic!("{toml_src}: {e}"));
    r
}

fn passes(toml_src: &str, answer: &str) -> bool {
    rubric(toml_src).check(answer).passed
}

fn numbers(text: &str) -> Vec<f64> {
    extract_numbers(text).into_iter().map(|n| n.value).collect()
}

#[rstest]
#[case::all_present(r#"all = ["red", "coat"]"#, "A red coat.", true)]
#[case::all_one_missing(r#"all = ["red", "coat"]"#, "A red jacket.", false)]
#[case::all_case_folded(r#"all = ["red"]"#, "RED!", true)]
#[case::any_second(r#"any = ["two", "2"]"#, "There are 2 people.", true)]
#[case::any_none_found(r#"any = ["two", "2"]"#, "There are three people.", false)]
#[case::none_absent(r#"none = ["blue"]"#, "A red coat.", true)]
#[case::none_present(r#"none = ["blue"]"#, "A red and Blue coat.", false)]
#[case::regex_single(r#"regex = '\d{4} \d{3}'"#, "Call 0131 555 6363", true)]
#[case::regex_list_one_fails(r#"regex = ['^a', 'z$']"#, "abc", false)]
#[case::regex_case_insensitive(r#"regex = "^twilight""#, "TWILIGHT (2008)", true)]
#[case::regex_case_sensitive(
    r#"regex = "^twilight"
case_sensitive = true"#,
    "TWILIGHT",
    false
)]
#[case::regex_raw_not_folded(r#"regex = "29 \\+ 36""#, "29 + 36 = 65", true)]
#[case::number_single(r#"number = 2"#, "Two people", true)]
#[case::number_wrong(r#"number = 2"#, "Three people", false)]
#[case::number_list(
    r#"number = [29, 36, 65]"#,
    "twenty-nine + thirty-six = sixty-five",
    true
)]
#[case::number_list_one_missing(r#"number = [29, 36, 65]"#, "29 + 36 = 64", false)]
#[case::number_tolerance(
    r#"number = 3.14
tolerance = 0.01"#,
    "pi is about 3.1416",
    true
)]
#[case::number_outside_tolerance(
    r#"number = 3.14
tolerance = 0.001"#,
    "pi is about 3.15",
    false
)]
#[case::max_words_ok("max_words = 3", "Two people.", true)]
#[case::max_words_exact("max_words = 2", "Two people.", true)]
#[case::max_words_over("max_words = 2", "There are two people.", false)]
#[case::digits_separated(r#"digits_in_order = "01315556363""#, "Call (0131) 555-6363 now", true)]
#[case::digits_missing(r#"digits_in_order = "0131 555 6363""#, "Call 0131 555 6364", false)]
#[case::case_sensitive_keyword(
    r#"all = ["Red"]
case_sensitive = true"#,
    "a red coat",
    false
)]
fn check_kinds(#[case] toml_src: &str, #[case] answer: &str, #[case] expected: bool) {
    assert_eq!(
        passes(toml_src, answer),
        expected,
        "{}",
        explain(answer, &rubric(toml_src).check(answer))
    );
}

#[rstest]
#[case::inside_word("red", "I am bored", false)]
#[case::prefix_of_word("red", "reduced prices", false)]
#[case::whole_word("red", "a red coat", true)]
#[case::plural_is_inflection("cat", "two cats", true)]
#[case::plural_not_prefix("cat", "a catalog", false)]
#[case::phrase("red coat", "a red  coat", true)]
#[case::phrase_needs_adjacent_words("red coat", "red, then a coat", false)]
#[case::phrase_across_punctuation("red coat", "red; coat", true)]
#[case::phrase_not_subword("ed coa", "a red coat", false)]
#[case::phone_hyphens("0131 555 6363", "0131-555-6363", true)]
#[case::logo_hyphen("high time coffee shop", "The logo says: High-Time Coffee Shop!", true)]
#[case::keyword_punctuation("hello!", "Hello", true)]
#[case::answer_punctuation("hello", "\"Hello!\"", true)]
#[case::markdown("twilight", "**Twilight**", true)]
#[case::unicode_lowercase("ÉCOLE", "l'école", true)]
#[case::han_without_spaces("老味道", "文字是老味道。", true)]
#[case::second_occurrence_counts("red", "bored, but red", true)]
fn keyword_matching(#[case] keyword: &str, #[case] answer: &str, #[case] expected: bool) {
    let r = Rubric {
        all: vec![keyword.into()],
        ..Default::default()
    };
    assert_eq!(
        r.check(answer).passed,
        expected,
        "{keyword:?} in {answer:?}"
    );
}

#[test]
fn without_punctuation_folding_keywords_are_literal() {
    let r = Rubric {
        all: vec!["0131 555 6363".into()],
        fold_punctuation: false,
        ..Default::default()
    };
    assert!(!r.check("0131-555-6363").passed);
    assert!(r.check("0131 555 6363.").passed);
    let r = Rubric {
        all: vec!["c++".into()],
        fold_punctuation: false,
        ..Default::default()
    };
    assert!(r.check("Written in C++.").passed);
    assert!(!r.check("Written in C.").passed);
}

#[rstest]
#[case::word("two", vec![2.0])]
#[case::capitalised("Two people", vec![2.0])]
#[case::digit("2", vec![2.0])]
#[case::decimal("2.0", vec![2.0])]
#[case::plus("+2", vec![2.0])]
#[case::minus("a = -3", vec![-3.0])]
#[case::unicode_minus("−3", vec![-3.0])]
#[case::thousands("1,000", vec![1000.0])]
#[case::thousands_millions("1,234,567.5", vec![1_234_567.5])]
#[case::list_not_thousands("2, 3", vec![2.0, 3.0])]
#[case::comma_without_space("1,2345", vec![1.0, 2345.0])]
#[case::ordinal_digits("the 2nd one", vec![2.0, 1.0])]
#[case::phone("0131 555 6363", vec![131.0, 555.0, 6363.0])]
#[case::phone_hyphens("0131-555-6363", vec![131.0, 555.0, 6363.0])]
#[case::sum_digits("29+36=65", vec![29.0, 36.0, 65.0])]
#[case::sum_words("twenty-nine + thirty-six = sixty-five", vec![29.0, 36.0, 65.0])]
#[case::tens_space("twenty nine", vec![29.0])]
#[case::hundred("one hundred", vec![100.0])]
#[case::a_hundred("a hundred", vec![100.0])]
#[case::hundred_and("three hundred and five", vec![305.0])]
#[case::large("two thousand and twenty-four", vec![2024.0])]
#[case::million("one million two hundred thousand", vec![1_200_000.0])]
#[case::dozen("a dozen eggs", vec![12.0])]
#[case::two_dozen("two dozen", vec![24.0])]
#[case::separate_units("one two three", vec![1.0, 2.0, 3.0])]
#[case::comma_breaks("twenty, nine", vec![20.0, 9.0])]
#[case::teen_after_tens("twenty twelve", vec![20.0, 12.0])]
#[case::zero("zero zero", vec![0.0, 0.0])]
#[case::article_alone("a cat and an owl", vec![])]
#[case::no_numbers("someone is gone", vec![])]
#[case::trailing_period("It is 2.", vec![2.0])]
fn number_spellings(#[case] text: &str, #[case] expected: Vec<f64>) {
    assert_eq!(numbers(text), expected);
}

#[rstest]
#[case::not_inside_bigger("12 apples", false)]
#[case::not_decimal("2.5", false)]
#[case::not_negative("-2", false)]
#[case::ordinal("the 2nd image", true)]
#[case::decimal_zero("2.0", true)]
fn number_two(#[case] answer: &str, #[case] expected: bool) {
    assert_eq!(passes("number = 2", answer), expected, "{answer:?}");
}

#[test]
fn number_spans_show_the_original_spelling() {
    let found = extract_numbers("I see Twenty-Nine cats");
    assert_eq!(found.len(), 1);
    assert_eq!(
        &"I see Twenty-Nine cats"[found[0].span.0..found[0].span.1],
        "Twenty-Nine"
    );
    let v = rubric("number = 29").check("I see Twenty-Nine cats");
    assert_eq!(v.checks[0].detail, r#"found as "Twenty-Nine" at char 7"#);
}

#[rstest]
#[case::empty("", "rubric checks nothing")]
#[case::only_options("case_sensitive = true", "rubric checks nothing")]
#[case::bad_regex("regex = '(unclosed'", r#"regex "(unclosed" does not compile"#)]
#[case::bad_regex_in_list("regex = ['ok', 'a{2,1}']", r#"regex "a{2,1}" does not compile"#)]
#[case::negative_max_words("max_words = -1", "max_words = -1")]
#[case::zero_max_words("max_words = 0", "max_words = 0")]
#[case::negative_tolerance("number = 1\ntolerance = -0.5", "tolerance = -0.5")]
#[case::tolerance_alone("tolerance = 0.5\nall = ['x']", "no number check")]
#[case::nan_number("number = nan", "number = NaN")]
#[case::infinite_number("number = [1, inf]", "number = inf")]
#[case::empty_keyword("all = ['']", r#"all keyword "" is empty"#)]
#[case::punctuation_keyword("none = ['?!']", "empty once punctuation is ignored")]
#[case::contradiction("all = ['red']\nnone = ['Red']", r#"all keyword "red" contains "Red""#)]
#[case::contradiction_phrase(
    "any = ['red coat', 'crimson']\nnone = ['red']",
    r#"any keyword "red coat" contains "red""#
)]
#[case::letters_in_digits("digits_in_order = '0131 555 636e'", "must be digits")]
#[case::no_digits("digits_in_order = '--'", "must be digits")]
fn validate_rejects(#[case] toml_src: &str, #[case] message_part: &str) {
    let r: Rubric = toml::from_str(toml_src).unwrap();
    let err = r.validate().unwrap_err();
    assert!(err.contains(message_part), "{err:?} lacks {message_part:?}");
}

#[test]
fn validate_reports_every_problem() {
    let r: Rubric = toml::from_str("regex = ['(', ')']\nmax_words = -2").unwrap();
    let err = r.validate().unwrap_err();
    assert!(
        err.contains(r#"regex "(""#)
            && err.contains(r#"regex ")""#)
            && err.contains("max_words = -2"),
        "{err}"
    );
}

#[test]
fn validate_accepts_a_full_rubric() {
    rubric(
        r#"all = ["red"]
any = ["coat", "jacket"]
none = ["blue"]
regex = ['\bred\b']
number = [1, 2.5]
tolerance = 0.1
max_words = 12
digits_in_order = "0131-555-6363"
case_sensitive = false
fold_punctuation = false"#,
    );
}

#[test]
fn unknown_key_is_rejected_with_the_known_ones() {
    let err = toml::from_str::<Rubric>(r#"alll = ["red"]"#)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown field `alll`") && err.contains("`all`"),
        "{err}"
    );
}

#[test]
fn wrong_type_says_what_is_expected() {
    let err = toml::from_str::<Rubric>(r#"number = "two""#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("a number or a list of numbers"), "{err}");
    let err = toml::from_str::<Rubric>("regex = 3")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a regex string or a list of regex strings"),
        "{err}"
    );
}

#[test]
fn inline_table_in_a_case() {
    #[derive(Deserialize)]
    struct Case {
        rubric: Rubric,
    }
    let case: Case = toml::from_str(r#"rubric = { number = 2, none = ["three"] }"#).unwrap();
    let expected = Rubric {
        number: vec![2.0],
        none: vec!["three".into()],
        ..Default::default()
    };
    assert_eq!(case.rubric, expected);
    assert!(
        case.rubric.fold_punctuation,
        "fold_punctuation defaults to true"
    );
}

#[rstest]
#[case::single(
    r#"regex = 'a'
number = 2"#
)]
#[case::lists(
    r#"all = ["red", "coat"]
none = ["blue"]
regex = ["a", "b"]
number = [29.0, 36.5]
tolerance = 0.01
max_words = 5
digits_in_order = "123"
case_sensitive = true
fold_punctuation = false"#
)]
fn serialization_round_trips(#[case] toml_src: &str) {
    let r = rubric(toml_src);
    let back: Rubric = toml::from_str(&toml::to_string(&r).unwrap()).unwrap();
    assert_eq!(back, r);
    let back: Rubric = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(back, r);
}

#[test]
fn serialization_skips_defaults_and_keeps_scalars() {
    let r = rubric("regex = 'a'\nnumber = 2");
    assert_eq!(
        serde_json::to_string(&r).unwrap(),
        r#"{"regex":"a","number":2.0}"#
    );
    assert_eq!(serde_json::to_string(&Rubric::default()).unwrap(), "{}");
}

#[test]
fn is_empty_ignores_options() {
    assert!(Rubric::default().is_empty());
    assert!(Rubric {
        case_sensitive: true,
        tolerance: Some(1.0),
        ..Default::default()
    }
    .is_empty());
    assert!(!Rubric {
        max_words: Some(3),
        ..Default::default()
    }
    .is_empty());
    assert!(!Rubric {
        digits_in_order: Some("1".into()),
        ..Default::default()
    }
    .is_empty());
}

#[test]
fn empty_rubric_never_passes_vacuously() {
    let v = Rubric::default().check("anything");
    assert!(!v.passed);
    assert_eq!(v.summary(), "rubric checks nothing");
}

#[test]
fn outcomes_one_per_check_with_details() {
    let r = rubric(
        r#"all = ["red", "coat"]
any = ["two", "2"]
none = ["blue"]
regex = 'c\w+t'
number = 2
max_words = 4
digits_in_order = "2""#,
    );
    let v = r.check("Two RED coats, not blue");
    let got: Vec<(CheckKind, &str, bool, &str)> = v
        .checks
        .iter()
        .map(|c| (c.kind, c.expected.as_str(), c.passed, c.detail.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                CheckKind::All,
                r#""red""#,
                true,
                r#"found as "RED" at char 5"#
            ),
            (
                CheckKind::All,
                r#""coat""#,
                true,
                r#"found as "coats" at char 9"#
            ),
            (
                CheckKind::Any,
                r#""two", "2""#,
                true,
                r#""two" found as "Two" at char 1"#
            ),
            (
                CheckKind::None,
                r#""blue""#,
                false,
                r#"found as "blue" at char 20"#
            ),
            (
                CheckKind::Regex,
                r"/c\w+t/",
                true,
                r#"matched "coat" at char 9"#
            ),
            (CheckKind::Number, "2", true, r#"found as "Two" at char 1"#),
            (CheckKind::MaxWords, "4", false, "5 words (max 4)"),
            (
                CheckKind::DigitsInOrder,
                r#""2""#,
                false,
                "the answer has no digits"
            ),
        ]
    );
    assert!(!v.passed);
    assert_eq!(v.failures().count(), 3);
    assert_eq!(
        v.summary(),
        r#"found forbidden: "blue"; too long: 5 words (max 4); missing digits: "2""#
    );
}

#[test]
fn summary_groups_failures_of_one_kind() {
    let v = rubric(r#"all = ["red", "coat", "hat"]"#).check("a hat");
    assert_eq!(v.summary(), r#"missing: "red", "coat""#);
    assert_eq!(rubric(r#"all = ["hat"]"#).check("a hat").summary(), "ok");
}

#[test]
fn number_failure_lists_what_was_found() {
    let v = rubric("number = 65").check("29 + 36 = 64, or sixty-four");
    assert_eq!(
        v.checks[0].detail,
        "not found; numbers in answer: 29, 36, 64"
    );
    let v = rubric("number = 1\ntolerance = 0.5").check("none at all");
    assert_eq!(
        (v.checks[0].expected.as_str(), v.checks[0].detail.as_str()),
        ("1 ± 0.5", "not found; the answer has no numbers")
    );
}

#[test]
fn digits_in_order_shows_where() {
    let v = rubric(r#"digits_in_order = "01315556363""#).check("Tel: 0131-555-6363.");
    assert_eq!(v.checks[0].detail, r#"found as "0131-555-6363" at char 6"#);
    let v = rubric(r#"digits_in_order = "01315556363""#).check("Tel: 0131 555 636");
    assert_eq!(v.checks[0].detail, r#"answer digits are "0131555636""#);
}

#[test]
fn display_shows_each_check() {
    let v = rubric(
        r#"all = ["red", "coat"]
none = ["blue"]"#,
    )
    .check("A blue coat.");
    assert_eq!(
        v.to_string(),
        "rubric: FAILED (2 of 3 checks failed)\n  \
         ✗ all \"red\": missing\n  \
         ✓ all \"coat\": found as \"coat\" at char 8\n  \
         ✗ none \"blue\": found as \"blue\" at char 3"
    );
    let v = rubric(r#"all = ["coat"]"#).check("A blue coat.");
    assert_eq!(
        v.to_string(),
        "rubric: passed (1 of 1 checks)\n  ✓ all \"coat\": found as \"coat\" at char 8"
    );
}

#[test]
fn explain_quotes_and_wraps_the_answer() {
    let answer = format!("{}\n  indented line", ["word"; 30].join(" "));
    let v = rubric(r#"all = ["missing"]"#).check(&answer);
    let text = explain(&answer, &v);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "answer (32 words):");
    assert!(
        lines[1].starts_with("  │ word word") && lines[1].chars().count() <= 100,
        "{text}"
    );
    assert_eq!(lines[3], "  │   indented line");
    assert_eq!(lines[4], "rubric: FAILED (1 of 1 checks failed)");
    assert!(text.ends_with("✗ all \"missing\": missing"), "{text}");
    assert!(explain("  ", &v).starts_with("answer (0 words):\n  │ (empty answer)\n"));
}

#[test]
fn verdict_serializes_for_json_lines() {
    let v = rubric(r#"none = ["blue"]"#).check("blue");
    assert_eq!(
        serde_json::to_string(&v).unwrap(),
        r#"{"passed":false,"checks":[{"kind":"none","expected":"\"blue\"","passed":false,"detail":"found as \"blue\" at char 1","at":[0,4]}]}"#
    );
    let back: Verdict = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
    assert_eq!(back, v);
}

#[test]
fn check_survives_an_unvalidated_bad_regex() {
    let r = Rubric {
        regex: vec!["(".into()],
        ..Default::default()
    };
    let v = r.check("(");
    assert!(!v.passed);
    assert!(
        v.checks[0].detail.starts_with("does not compile"),
        "{}",
        v.checks[0].detail
    );
}
