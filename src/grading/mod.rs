//! Grading stored answers again, offline: re-applying today's rubrics to the answers of past
//! runs and recordings (`eyetest regrade`), and measuring how far rubric verdicts agree with
//! human grades (`eyetest agreement`). Neither asks a model: a rubric author edits a rubric and
//! sees at once which verdicts flip and whether the rubric now grades like a person.

pub mod agreement;
pub mod regrade;
