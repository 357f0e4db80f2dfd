//! Asking a rubric's judge, through the session that owns every target's connection and
//! concurrency bound: a judge is one more declared target, reached as the cases reach theirs,
//! recorded with `--record` and replayed whenever the answer or the judge is replayed.

use std::sync::Arc;
use std::time::Instant;

use crate::backend::{ChatRequest, ImageData};
use crate::record::{self, ReplayError};
use crate::rubric::judge::prompt::{self, JudgeInput, Reply};
use crate::rubric::judge::{self as j, JudgeSpec, Ruling};
use crate::rubric::Verdict;
use crate::spec::Case;
use crate::targets::Target;

use super::{toml_to_json_map, CaseTiming, Session};

/// The judge's text quoted in an error: enough to see what it said, bounded for one report.
const QUOTED_REPLY_CHARS: usize = 400;

impl Session {
    /// The keyword verdict on `answer`, completed by the rubric's judge when it has one (and
    /// `when` says to ask). Judge time counts as the case's request time.
    pub(super) async fn judged(
        &self,
        case: &Case,
        target: &Target,
        answer: &str,
        keywords: Verdict,
        timing: &mut CaseTiming,
    ) -> Verdict {
        let Some(spec) = &case.rubric.judge else {
            return keywords;
        };
        if !j::must_ask(spec, &keywords) {
            return j::combine(spec, keywords, None, false);
        }
        let start = Instant::now();
        let (ruling, replayed) = self.ask_judge(case, target, spec, answer).await;
        timing.request += start.elapsed();
        j::combine(spec, keywords, Some(ruling), replayed)
    }

    /// Asks (or replays) the judge; the flag says whether the ruling was replayed.
    async fn ask_judge(
        &self,
        case: &Case,
        target: &Target,
        spec: &JudgeSpec,
        answer: &str,
    ) -> (Ruling, bool) {
        let Some(judge) = self.suite.target(&spec.target).cloned() else {
            return (
                Ruling::Error(format!(
                    "judge target `{}` is not declared in eyetest.toml",
                    spec.target
                )),
                false,
            );
        };
        let image = if spec.image {
            match self.image(case).await {
                Ok(i) => i,
                Err(e) => {
                    return (
                        Ruling::Error(format!("cannot show judge `{}` the image: {e}", judge.name)),
                        false,
                    )
                }
            }
        } else {
            Arc::new(ImageData::none())
        };
        // A replay judge asks as the target it replays, as a replay answer does.
        let source = judge.replay_of().unwrap_or(&judge.name).to_string();
        let model = self
            .suite
            .target(&source)
            .map_or(&judge.common.model, |t| &t.common.model)
            .clone();
        let request = ChatRequest {
            model,
            prompt: prompt::build(&JudgeInput {
                question: &case.prompt,
                label: case.label.as_deref().unwrap_or_default(),
                criteria: spec.criteria.as_deref(),
                answer,
                with_image: spec.image,
            }),
            image,
            max_tokens: spec.max_tokens.map_or(j::DEFAULT_MAX_TOKENS, |m| {
                m.clamp(1, u32::MAX as i64) as u32
            }),
            temperature: 0.0,
            seed: None,
            stream: judge.common.stream,
            extra: toml_to_json_map(&judge.common.extra),
        };
        // The recorded verdict is about the answer of the target that was recorded.
        let answering = target.replay_of().unwrap_or(&target.name);
        let path = j::recording_path(
            &self.golden_dir(),
            &source,
            answering,
            &case.spec.id,
            &case.name,
        );
        if target.is_replay() || judge.is_replay() {
            let ruling = match record::replay(&path, &source, &case.id(), &request) {
                Ok(reply) => read(&source, &reply.text),
                Err(e) => Ruling::Error(replay_problem(&e, &source, answering)),
            };
            return (ruling, true);
        }
        let client = match self.client(&judge).await {
            Ok(c) => c,
            Err(e) => {
                return (
                    Ruling::Error(format!("judge `{}` unreachable: {e}", judge.name)),
                    false,
                )
            }
        };
        let reply = {
            let _permit = match self.targets[&judge.name].permits.acquire().await {
                Ok(p) => p,
                Err(_) => return (Ruling::Error("judge target closed".into()), false),
            };
            client.chat(&request).await
        };
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                return (
                    Ruling::Error(format!("judge `{}` failed: {e}", judge.name)),
                    false,
                )
            }
        };
        if self.record {
            let saved = record::Recording::new(&judge.name, &request, &reply).save(&path);
            if let Err(e) = saved {
                return (
                    Ruling::Error(format!(
                        "cannot write judge recording {}: {e}",
                        path.display()
                    )),
                    false,
                );
            }
        }
        (read(&judge.name, &reply.text), false)
    }
}

/// The ruling in a judge's reply; an unparseable reply is an error quoting it.
fn read(judge: &str, text: &str) -> Ruling {
    match prompt::parse_reply(text) {
        Reply::Pass(r) => Ruling::Pass(r),
        Reply::Fail(r) => Ruling::Fail(r),
        Reply::Unparseable => {
            let mut quoted: String = text.chars().take(QUOTED_REPLY_CHARS).collect();
            if text.chars().count() > QUOTED_REPLY_CHARS {
                quoted.push('…');
            }
            Ruling::Error(format!(
                "judge `{judge}` replied without a readable verdict (PASS or FAIL on its first line): {quoted:?}"
            ))
        }
    }
}

/// A replay error in a judge's terms: the recording is made by running the *answering*
/// target with `--record`, not the judge.
fn replay_problem(e: &ReplayError, judge: &str, answering: &str) -> String {
    let fix = format!("record it with `eyetest run --record --target {answering}`");
    match e {
        ReplayError::Missing { case, path, .. } => format!(
            "no recording of judge `{judge}`'s verdict on `{case}`@{answering} at {} ({fix})",
            path.display()
        ),
        ReplayError::Changed {
            path, differences, ..
        } => format!(
            "the judge request differs from the one recorded at {} ({}); {fix}",
            path.display(),
            differences.join("; ")
        ),
        ReplayError::Unreadable { .. } => format!("judge `{judge}`: {e}"),
    }
}
