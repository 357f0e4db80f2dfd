//! The study's 28 rubrics (specs/study/tasks.toml) against answers in the style real models
//! give: long, chatty, markdown, converse relations, synonyms, inflections, mentions of the
//! wrong candidate in passing. Each task has answers a careful person marks right and answers
//! they mark wrong; the rubric must agree with the person on every one.
//!
//! Where today's rubric keys cannot agree (a claim versus a mention), the answer is listed in
//! `KNOWN_LIMITS` with what the rubric does, so the gap stays visible rather than hidden.

use std::path::Path;

use eyetest::spec::Suite;

/// (case, answers a careful person accepts, answers they reject)
type Task = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

const TASKS: &[Task] = &[
    ("elephant",
     &["The image shows an elephant standing in a field.",
       "**Objects:**\n\n* Two elephants\n* Trees\n* Grass",
       "Elephant"],
     &["The image shows a rhinoceros near some trees.",
       "I see grass and trees; there is no elephant."]),
    ("fridge",
     &["The items present are a refrigerator, a microwave and a kitchen counter.",
       "A stainless-steel fridge with magnets on the door."],
     &["The image shows an oven and a dishwasher.",
       "There is no refrigerator in this image, only cabinets."]),
    ("tennis",
     &["There are two people in this image.",
       "2",
       "There are **2 people**: one person is serving and the other is at the net."],
     &["There are three people in this image.",
       "There is one person in the image, holding a racket.",
       "I can see 4 people on the court."]),
    ("pizza",
     &["Two slices of pizza are visible.",
       "There are 2 slices of pizza on the plate, one with pepperoni."],
     &["There are three slices of pizza.",
       "There is only one slice of pizza visible.",
       "The pizza is cut into eight slices."]),
    ("motorcycle",
     &["The motorcycle is positioned to the right of the bus.",
       "The motorcycle is on the right-hand side of the bus, close to the curb.",
       "The bus is to the left of the motorcycle."],
     &["The motorcycle is to the left of the bus.",
       "The motorcycle is in front of the bus, moving towards the right side of the image.",
       "The bus is to the right of the motorcycle."]),
    ("dog",
     &["The baby is located to the right of the dog.",
       "The dog is to the left of the baby.",
       "The baby is lying on the **right side of the dog**, with its head on a pillow."],
     &["The baby is to the left of the dog.",
       "The baby is in front of the dog, on the right side of the image.",
       "The dog is to the right of the baby."]),
    ("skiing",
     &["A red coat.",
       "The skier wears a red coat; the blue sky and white snow are behind them."],
     &["The skier is wearing a blue coat.",
       "There is a black jacket and a pair of white gloves.",
       // A wrong extra candidate: keyword rubrics passed it ("red" present); `not_about`
       // binds "blue" to the coats.
       "The coats are red and blue."]),
    ("couch",
     &["The couch is red.",
       "There is one red couch in the room, with a blue rug in front of it."],
     &["The couches are red and white.",
       "The image shows a white couch and a red chair.",
       "There is a brown couch."]),
    ("phone-number",
     &["The phone number is 0131 555 6363.",
       "Phone: (0131) 555-6363",
       "**0131-555-6363**"],
     &["The phone number is 0131 555 6336.",
       "0131 555 636"]),
    ("coffee-shop",
     &["The logo says \"High Time Coffee Shop\".",
       "The words in the logo are:\n\n1. HIGH TIME\n2. COFFEE SHOP"],
     &["The logo reads \"Good Time Coffee Shop\".",
       "High Time"]),
    ("godfather",
     &["The director of The Godfather is Francis Ford Coppola.",
       "The movie, *The Godfather* (1972), was directed by **Francis Ford Coppola**, from the novel by Mario Puzo."],
     &["The movie was directed by Martin Scorsese.",
       "Mario Puzo directed it."]),
    ("twilight",
     &["The title of the movie is Twilight.",
       "**Twilight** (2008), the first film of the saga, followed by New Moon."],
     &["The Twilight Saga: New Moon",
       "The movie is Breaking Dawn."]),
    ("hepburn",
     &["The actor inside the red box is Audrey Hepburn.",
       "This appears to be **Audrey Hepburn** in a still from Roman Holiday."],
     &["The actor is Katharine Hepburn.",
       "I'm sorry, I can't identify people based on their facial features."]),
    ("carrey",
     &["Jim Carrey",
       "The actor inside the red box is Jim Carrey, known for The Mask."],
     &["The actor is Robin Williams.",
       "I can't help with identifying people in images."]),
    ("moat",
     &["The image depicts a moat surrounding a castle.",
       "This is a castle with moats of still water."],
     &["The image depicts a river flowing through a park.",
       "A lake in the mountains."]),
    ("kitchen",
     &["This image depicts a galley kitchen.",
       "A narrow **galley**-style kitchen with cabinets on both sides."],
     &["The image depicts a living room.",
       "A bathroom."]),
    ("beijing",
     &["This is the Temple of Confucius in Beijing.",
       "The landmark is Beijing's Confucius Temple, the second largest after the one in Qufu."],
     &["This is the Forbidden City in Beijing.",
       "This is the Temple of Confucius in Qufu.",
       "The Temple of Heaven in Beijing."]),
    ("church",
     &["The Church of Saint Giles in Prague.",
       "This is the Church of St. Giles (Kostel sv. Jiljí) in Prague's Old Town."],
     &["This is St Giles' Cathedral in Edinburgh.",
       "St. Vitus Cathedral in Prague."]),
    ("still-life",
     &["This is a still-life painting.",
       "The artwork is a **still life**: fruit and flowers on a table."],
     &["This is a landscape painting.",
       "A portrait of a woman."]),
    ("louve",
     &["This artwork is displayed at the Musée du Louvre in Paris.",
       "It is in the Louvre."],
     &["It is displayed at the Musée d'Orsay.",
       "The Metropolitan Museum of Art in New York."]),
    ("stoplight",
     &["Stop.",
       "The sign indicates that you must stop. Come to a complete stop, then proceed when it is safe.",
       "You should **stop** and wait for the light to turn green."],
     &["You can go: the light is green.",
       "Continue driving, but watch for pedestrians.",
       "Yield to oncoming traffic."]),
    ("cat",
     &["There is one cat in this image.",
       "1",
       "One cat, reflected in the mirror, creating the appearance of two cats."],
     &["There are two cats in this image.",
       "I can see two cats sitting next to each other."]),
    ("add",
     &["65",
       "29 + 36 = **65**",
       "The answer to the arithmetic question is 65."],
     &["The answer is 55.",
       "29 + 36 = 56"]),
    ("solve",
     &["3",
       "To solve for a: 2a + 4 = 10, so 2a = 6 and a = 3.",
       "The value of 'a' should be **3**."],
     &["a = 5",
       "The value of a is 2, since 3 + 2 = 5.",
       "a = 30"]),
    ("chinese",
     &["The text translates to \"old taste\".",
       "An appropriate translation is \"Old Flavor\", meaning the taste of the old days.",
       "Traditional flavour"],
     &["The text means \"fresh food\".",
       "It says \"good taste\"."]),
    ("japanese",
     &["The appropriate translation is \"work together\".",
       "It means \"joint effort\" or cooperation.",
       "Teamwork"],
     &["The text says \"good morning\".",
       "It means \"hard work\"."]),
    ("code1",
     &["Hello",
       "The output of the code is:\n\n```\nHello\n```",
       "The code prints `Hello`."],
     &["Hello, World!",
       "The code raises a SyntaxError."]),
    ("code2",
     &["0",
       "The output of the code is `0`.",
       "The code computes `10 % 2`, which is 0, so it prints:\n\n```python\n0\n```"],
     &["The output is 1.",
       "The output of the code will be 10, since range(0, 5) ...",
       "It prints 2."]),
];

/// Answers a careful person judges one way and today's rubric keys the other, with the
/// verdict the rubric gives. Claim-aware checks are meant to empty this list.
const KNOWN_LIMITS: &[(&str, &str, bool)] = &[
    // Right (the two cats are an appearance), failed by "there are two cats".
    (
        "cat",
        "At first glance there are two cats, but one is a reflection: there is one cat.",
        false,
    ),
];

fn suite() -> Suite {
    Suite::load(Path::new(env!("CARGO_MANIFEST_DIR"))).expect("the project loads")
}

#[test]
fn every_study_rubric_judges_real_style_answers_like_a_person() {
    let suite = suite();
    let study: Vec<_> = suite
        .cases
        .iter()
        .filter(|c| c.spec.id == "study/tasks")
        .collect();
    assert_eq!(study.len(), 28);
    assert_eq!(TASKS.len(), 28, "one entry per task");
    let mut wrongly = Vec::new();
    for (name, right, wrong) in TASKS {
        let case = study
            .iter()
            .find(|c| c.name == *name)
            .unwrap_or_else(|| panic!("no case {name}"));
        for a in *right {
            let v = case.rubric.check(a);
            if !v.passed {
                wrongly.push(format!(
                    "{name}: rejected a right answer {a:?}: {}",
                    v.summary()
                ));
            }
        }
        for a in *wrong {
            if case.rubric.check(a).passed {
                wrongly.push(format!("{name}: accepted a wrong answer {a:?}"));
            }
        }
    }
    assert!(wrongly.is_empty(), "{}", wrongly.join("\n"));
}

#[test]
fn known_limits_of_todays_keys_are_what_they_say() {
    let suite = suite();
    for (name, answer, verdict) in KNOWN_LIMITS {
        let case = suite
            .cases
            .iter()
            .find(|c| c.spec.id == "study/tasks" && c.name == *name)
            .unwrap();
        assert_eq!(
            case.rubric.check(answer).passed,
            *verdict,
            "{name}: {answer:?} (if this changed, a rubric improved: move it to TASKS)"
        );
    }
}

/// The tasks are the study's, verbatim and in its order (qualitative/tasks.csv).
#[test]
fn the_tasks_are_the_studys_word_for_word() {
    let suite = suite();
    let got: Vec<(String, String, String, String, String)> = suite
        .cases
        .iter()
        .filter(|c| c.spec.id == "study/tasks")
        .map(|c| {
            (
                c.category.clone().unwrap_or_default(),
                c.subcategory.clone().unwrap_or_default(),
                c.photo.as_ref().map(|p| p.name.clone()).unwrap_or_default(),
                c.prompt.clone(),
                c.label.clone().unwrap_or_default(),
            )
        })
        .collect();
    let want = include_str!("study_tasks.tsv")
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].to_string(),
                f[1].to_string(),
                f[2].to_string(),
                f[3].to_string(),
                f[4].to_string(),
            )
        })
        .collect::<Vec<_>>();
    assert_eq!(got, want);
}

/// The simulated engine's answers for the study photos are judged like real ones: its terse
/// and verbose answers pass, its wrong ones fail.
#[test]
fn the_simulated_answers_for_the_study_photos_meet_the_rubrics() {
    let suite = suite();
    for (name, sha, terse, verbose, wrong) in eyetest::sim::study::STUDY {
        let case = suite
            .cases
            .iter()
            .find(|c| c.photo.as_ref().is_some_and(|p| p.name == name))
            .unwrap_or_else(|| panic!("no case uses {name}"));
        assert_eq!(case.photo.as_ref().unwrap().sha256, sha, "{name}");
        for a in [terse, verbose] {
            let v = case.rubric.check(a);
            assert!(v.passed, "{name}: {a:?}: {}", v.summary());
        }
        assert!(!case.rubric.check(wrong).passed, "{name}: {wrong:?}");
    }
}
