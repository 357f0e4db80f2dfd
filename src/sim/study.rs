//! What the simulated engine answers about the study's own photos, which carry no embedded
//! ground truth: it recognises them by sha256 (as pinned in manifests/study.toml) and answers
//! from the study's labels.
//!
//! This is a lookup table, not vision: it exists so that once the photos are fetched, the
//! study suite runs end to end against the simulated targets (report, snapshots, CI) with no
//! model. Any other photo gets the generic caption. The terse answers are in the style the
//! study saw from Llama-3.2-11B, the verbose ones in the chatty markdown style of the larger
//! models; the wrong ones are the plausible mistakes each rubric must reject.

use crate::fixture::truth::Truth;

/// One study photo: (file name in the manifest, sha256, terse, verbose, wrong).
pub type StudyAnswer = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

/// The 28 photos of the study, in its order.
pub const STUDY: [StudyAnswer; 28] = [
    ("elephant.png", "68c87bd5f7cc0369a2f634802feb91168a1575c8bbd1ba830a917967adf989a5",
     "Elephant.",
     "The image shows **an elephant** standing in a grassy field, with trees in the background.",
     "A rhinoceros and some trees."),
    ("fridge.png", "cf7807f4b670917729242aa2c6a68485feb6dc3c96c36cb02e6a85c49294e541",
     "A refrigerator.",
     "The items present in this image are:\n\n* A refrigerator\n* Magnets on its door\n* A kitchen counter",
     "A washing machine."),
    ("tennis.png", "6c662ca00ed853a9521963b7cfe49a8265aee638664061d465cf30a59092eebc",
     "2",
     "There are **two people** in this image: one is serving, and the other is waiting at the net.",
     "There are three people in this image."),
    ("pizza.png", "b3f54a121d5685566942ba58e68396408739507f097322a8de8761965f5e2278",
     "2",
     "Two slices of pizza are visible on the plate.",
     "There are 4 slices of pizza visible."),
    ("motorcycle.png", "ace3210d10e66264324a1be856c14baa335cebb8e9a45855b79dae016b6ddf85",
     "To the right of the bus.",
     "The motorcycle is positioned on the right side of the bus; the bus is to the left of the motorcycle.",
     "The motorcycle is to the left of the bus."),
    ("dog.png", "95b3dfb0694668d766452202e3090639095c7ecc99c8ceea39f705793904366e",
     "The baby is to the right of the dog.",
     "The baby is lying on the right side of the dog. In other words, the dog is to the left of the baby.",
     "The baby is to the left of the dog."),
    ("skiing.png", "fa5f0b3cd0213429a4c4cb0ddba4357a8f90eac79691c4edd2181dcdd0c672cf",
     "Red.",
     "The skier is wearing a red coat; the blue sky and the white snow are behind them.",
     "A blue coat."),
    ("couch.png", "30b826a9407b70fddf39775f9cb0e7f0e211adea3e6b1eb4e8138c312f615d34",
     "Red.",
     "The couch in this image is red.",
     "The couches are red and white."),
    ("phone-number.png", "330968777fbd8048d5277cc82b41677e44753300c8507a0080b9e19bff4ba72e",
     "0131 555 6363",
     "The phone number in this image is **0131 555 6363**.",
     "0131 555 6336"),
    ("coffee-shop.png", "394a577be43311dc4287badd77f4f29e4e1e0cc4f15eb69c988242beb433e4b1",
     "High Time Coffee Shop",
     "The logo reads \"HIGH TIME\" above the words \"COFFEE SHOP\".",
     "Good Time Cafe"),
    ("godfather.png", "484216aed50b860ddcca986cd6361f4e81a08054446f625d37ca54c9f6352624",
     "Francis Ford Coppola",
     "The movie is *The Godfather* (1972), directed by **Francis Ford Coppola** and based on the novel by Mario Puzo.",
     "Martin Scorsese"),
    ("twilight.png", "5e4b61a1347311500e3b156113f1de90f07e49eeca992a7089369159ab6d11c7",
     "Twilight",
     "The title of the movie is **Twilight** (2008), the first film of the saga, followed by New Moon.",
     "The Twilight Saga: New Moon"),
    ("hepburn.png", "c088c74546c99e3681fc5d391c31d46d6a1f8c9987701e51a6eb8f6f0a24e42a",
     "Audrey Hepburn",
     "The actor inside the red box appears to be Audrey Hepburn.",
     "Katharine Hepburn"),
    ("carrey.png", "fbd0fe3590574d136d8ec63d24a4a12dd564f42b048297849ecc55add59b5ce0",
     "Jim Carrey",
     "The actor inside the red box is Jim Carrey.",
     "Robin Williams"),
    ("moat.png", "39ab9eed3b85c518a2a443e42ca4a5676f83b7df07313fd42dac2ba05d5ffb68",
     "A moat.",
     "This image depicts a castle moat: still water running along an old stone wall.",
     "A river in a park."),
    ("kitchen.png", "60a2761b0307847bee28d152a1410142ffc69833f0380f4039bc86621177e473",
     "A galley kitchen.",
     "The image depicts a narrow **galley** kitchen, with counters and cabinets along both walls.",
     "A living room."),
    ("beijing.png", "b9878345345b01b263935f99b7676fbcb3773da1d19884b205e188efde81afd0",
     "The Temple of Confucius in Beijing.",
     "This is the Temple of Confucius in Beijing, China, the second largest Confucian temple in the country after the one in Qufu.",
     "The Forbidden City."),
    ("church.png", "3c51b11a470626235b23c2068d2dabed5f7ca4df68afa1c517219845c3848e2c",
     "The Church of Saint Giles in Prague.",
     "The landmark is the Church of Saint Giles (Kostel sv. Jiljí) in Prague's Old Town.",
     "St Giles' Cathedral, Edinburgh."),
    ("still-life.png", "5eb7fe3a0c54390a81bb5cd2712ea5538021655fe87c7e60508b198e4faf0874",
     "Still life.",
     "This is a still-life painting: fruit and a vase arranged on a table.",
     "A landscape painting."),
    ("louve.png", "aca4c064e44953761ae0652bd48f119e97fe79858f10e2f1bc3ba3ee043b8bdd",
     "The Louvre.",
     "This artwork is displayed at the Musée du Louvre in Paris.",
     "The Musée d'Orsay."),
    ("stoplight.png", "471dac0621e8484541d96270158495de5ead62cd2bd873aa74fa90e56c858def",
     "Stop.",
     "The sign means you must **stop**: come to a complete stop, then proceed when it is safe.",
     "You can go: the light is green."),
    ("cat.png", "eba3d6577eebefbe72102f448c5355eeee71d7722c736f3687f5084f2170dc4f",
     "1",
     "There is one cat in this image, reflected in the mirror, creating the appearance of two cats.",
     "There are two cats in this image."),
    ("add.png", "408d7eb0b8a63bed25d42ce4316d3bcdd7032e6054b624e630e823ef69768b9a",
     "65",
     "The answer is 65:\n\n| a | b | a + b |\n|---|---|---|\n| 29 | 36 | 65 |",
     "55"),
    ("solve.png", "44d067a70cdde0313bd57ca8a5436f91cad42bd4506f68e0f90c6f1857800af3",
     "3",
     "Solving 2a + 4 = 10 gives 2a = 6, so **a = 3**.",
     "a = 5"),
    ("chinese.png", "dcdb951f096974d07599594c73bfb8409ce5f70436d9452b4858d304fe6faab0",
     "Old taste",
     "The text translates to \"old taste\", or the taste of the old days.",
     "Fresh food"),
    ("japanese.png", "f4cf76a533ae6a4016e986467136821cecd853ecc47b2d4b27e31fce4c31de4c",
     "Work together",
     "The text means \"work together\": a joint effort, or cooperation.",
     "Good morning"),
    ("code1.png", "035a5107963c2db19943ace45096083c46af534ef48c3ee3552e8faeefb17c79",
     "Hello",
     "The code checks `if x < 20:` and prints a greeting. Its output is:\n\n```\nHello\n```",
     "Hello, World!"),
    ("code2.png", "aefccd98317a50f60cae8c9487a0a2a91aaf89f507a0de99eaa0d72195e62805",
     "0",
     "The code computes `x % 2` for `x = 10`, so the output is `0`:\n\n```python\n>>> print(10 % 2)\n0\n```",
     "The output is 1."),
];

/// The ground truth the simulated engine answers from for a study photo, by its sha256 (hex).
pub fn truth_by_sha256(sha256: &str) -> Option<Truth> {
    STUDY
        .iter()
        .find(|(_, sha, ..)| sha.eq_ignore_ascii_case(sha256))
        .map(|&(_, _, terse, verbose, wrong)| Truth {
            kind: "study-photo".into(),
            terse: terse.into(),
            verbose: verbose.into(),
            wrong: wrong.into(),
        })
}

/// The same ground truth by the photo's file name in the study manifest (`elephant.png`), for
/// tests that stand in generated images for the study's photos.
pub fn truth_by_name(name: &str) -> Option<Truth> {
    let sha = STUDY.iter().find(|(n, ..)| *n == name)?.1;
    truth_by_sha256(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table and the bundled manifest agree: every pinned photo is known by its declared
    /// hash, so once fetched every study task gets its answer.
    #[test]
    fn every_study_photo_is_known_by_its_manifest_hash() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let m = crate::fetch::Manifests::load(root).unwrap();
        let study = &m.manifests["study"];
        assert_eq!(study.photos.len(), STUDY.len());
        for (p, row) in study.photos.iter().zip(STUDY.iter()) {
            assert_eq!(p.name, row.0, "same order as the study");
            let t = truth_by_sha256(&p.sha256).unwrap_or_else(|| panic!("{} unknown", p.name));
            assert_eq!(t.terse, row.2);
            assert_eq!(truth_by_sha256(&p.sha256.to_uppercase()), Some(t));
        }
        assert_eq!(truth_by_sha256(&"0".repeat(64)), None);
        assert_eq!(truth_by_name("louve.png").unwrap().terse, "The Louvre.");
    }
}
