//! Interop with a real third-party OpenAI-compatible vision server: Hugging Face
//! `transformers serve` with a tiny random Llama-3.2-Vision on the CPU
//! (`../shared/interop/real-vlm-server.sh`, started by `.ci/run`).
//!
//! Every test is reported as ignored, with the reason, unless `EYETEST_INTEROP_URL` (e.g.
//! `http://127.0.0.1:8011/v1`) is set; `EYETEST_INTEROP_MODEL` names the served model.
//! The model's answers are meaningless (random weights): these tests check the protocol,
//! streaming, timings, usage and our whole pipeline, not the answers.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use eyetest::backend::openai::{OpenAiClient, OpenAiConfig};
use eyetest::backend::{Answer, ChatRequest, ImageData};
use eyetest::runtime::runtime;
use libtest_mimic::{Arguments, Completion, Failed, Trial};

const URL_ENV: &str = "EYETEST_INTEROP_URL";
const MODEL_ENV: &str = "EYETEST_INTEROP_MODEL";
const MAX_TOKENS: u32 = 12;

struct Server {
    url: String,
    model: String,
}

fn server() -> Option<Server> {
    let url = std::env::var(URL_ENV).ok().filter(|u| !u.is_empty())?;
    let model = std::env::var(MODEL_ENV).unwrap_or_default();
    Some(Server { url, model })
}

fn client(s: &Server) -> OpenAiClient {
    let mut config = OpenAiConfig::new(s.url.clone());
    config.timeout = Duration::from_secs(120);
    config.max_retries = 1;
    OpenAiClient::new(eyetest::backend::openai::default_http_client(), config)
}

fn fixture(rel: &str) -> Arc<ImageData> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    Arc::new(ImageData::from_bytes(std::fs::read(path).unwrap()).unwrap())
}

fn request(s: &Server, image: Arc<ImageData>, stream: bool) -> ChatRequest {
    ChatRequest {
        model: s.model.clone(),
        prompt: "How many people are there in this image?".into(),
        image,
        max_tokens: MAX_TOKENS,
        temperature: 0.0,
        seed: Some(0),
        stream,
        extra: Default::default(),
    }
}

fn ask(s: &Server, req: &ChatRequest) -> Result<Answer, Failed> {
    runtime()
        .block_on(client(s).chat(req))
        .map_err(|e| format!("request to the interop server failed: {e}").into())
}

fn check(cond: bool, msg: impl FnOnce() -> String) -> Result<(), Failed> {
    if cond {
        Ok(())
    } else {
        Err(msg().into())
    }
}

fn models_lists_the_served_model(s: &Server) -> Result<(), Failed> {
    let models = runtime()
        .block_on(client(s).models())
        .map_err(|e| e.to_string())?;
    check(!models.is_empty(), || "no models listed".into())?;
    check(s.model.is_empty() || models.contains(&s.model), || {
        format!("{} not in {models:?}", s.model)
    })
}

fn non_streaming_answer_has_usage(s: &Server) -> Result<(), Failed> {
    let a = ask(
        s,
        &request(s, fixture("fixtures/count/people-2.png"), false),
    )?;
    let usage = a.usage.ok_or("server sent no usage")?;
    check(
        usage.completion_tokens >= 1 && usage.completion_tokens <= MAX_TOKENS as u64,
        || {
            format!(
                "completion_tokens {} outside 1..={MAX_TOKENS}",
                usage.completion_tokens
            )
        },
    )?;
    check(
        a.timing.ttft.is_none() && a.timing.e2e > Duration::ZERO,
        || format!("non-streaming timing {:?}", a.timing),
    )
}

fn streaming_answer_has_timings_and_usage(s: &Server) -> Result<(), Failed> {
    let a = ask(s, &request(s, fixture("fixtures/count/people-2.png"), true))?;
    let ttft = a.timing.ttft.ok_or("no TTFT: no content event seen")?;
    check(ttft <= a.timing.e2e, || {
        format!("ttft {ttft:?} > e2e {:?}", a.timing.e2e)
    })?;
    let usage = a.usage.ok_or("server sent no usage in the stream")?;
    // One content event per token, so the gaps between them number one fewer.
    check(
        a.timing.itl.len() < usage.completion_tokens as usize,
        || {
            format!(
                "{} ITL gaps for {} tokens",
                a.timing.itl.len(),
                usage.completion_tokens
            )
        },
    )?;
    check(!a.timing.itl.is_empty(), || {
        "no inter-token gaps measured".into()
    })
}

fn greedy_stream_and_body_agree(s: &Server) -> Result<(), Failed> {
    let image = fixture("fixtures/color/red-coat.png");
    let body = ask(s, &request(s, image.clone(), false))?;
    let stream = ask(s, &request(s, image, true))?;
    check(body.text == stream.text, || {
        format!(
            "temperature 0 answers differ: body {:?} vs stream {:?}",
            body.text, stream.text
        )
    })
}

fn jpeg_images_are_accepted(s: &Server) -> Result<(), Failed> {
    let png = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/count/people-2.png"),
    )?;
    let img = image::load_from_memory(&png)?;
    let mut jpeg = Vec::new();
    img.to_rgb8().write_to(
        &mut std::io::Cursor::new(&mut jpeg),
        image::ImageFormat::Jpeg,
    )?;
    let data = Arc::new(ImageData::from_bytes(jpeg)?);
    check(data.mime == "image/jpeg", || data.mime.to_string())?;
    ask(s, &request(s, data, true)).map(|_| ())
}

/// The whole pipeline: spec -> `eyetest run` -> HTTP -> rubric -> JSON lines.
fn eyetest_run_end_to_end(s: &Server) -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    std::fs::create_dir_all(root.join("specs"))?;
    std::fs::create_dir_all(root.join("fixtures"))?;
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/count/people-2.png"),
        root.join("fixtures/people.png"),
    )?;
    std::fs::write(
        root.join("eyetest.toml"),
        format!(
            "[target.hf]\nbackend = \"openai\"\nmodel = {:?}\nbase_url_env = \"{URL_ENV}\"\ntimeout_s = 120\n",
            s.model
        ),
    )?;
    // Random weights cannot count: the rubric must fail, with the answer recorded.
    std::fs::write(
        root.join("specs/count.toml"),
        format!("[[case]]\nname = \"people\"\nimage = \"fixtures/people.png\"\nprompt = \"How many people?\"\nmax_tokens = {MAX_TOKENS}\nrubric = {{ all = [\"zebra-xylophone\"] }}\n"),
    )?;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_eyetest"))
        .arg("--root")
        .arg(root)
        .args(["run", "--target", "hf", "--out", "results.jsonl"])
        .output()?;
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    check(!out.status.success(), || {
        format!("a failing rubric must fail the run: {log}")
    })?;
    let records = eyetest::results::read_results(&root.join("results.jsonl"))?;
    check(records.len() == 1, || {
        format!("{} records: {log}", records.len())
    })?;
    let r = &records[0];
    check(r.status == eyetest::results::Status::Failed, || {
        format!(
            "expected an answered, failed case, got {:?}: {log}",
            r.status
        )
    })?;
    check(
        r.answer.is_some() && r.usage.is_some() && r.ttft_ms.is_some(),
        || format!("answer, usage and TTFT should be recorded: {r:?}"),
    )
}

mod judge_interop;

/// The model judge against the real server: a verdict or a clear error, recorded and replayed.
fn judge_path_is_plumbed(s: &Server) -> Result<(), Failed> {
    judge_interop::judge_path(&s.model, URL_ENV)
}

/// `eyetest regrade` and `eyetest agreement` on the results of a real run.
fn regrade_and_agreement_on_a_real_run(s: &Server) -> Result<(), Failed> {
    judge_interop::regrade_and_agreement(&s.model, URL_ENV)
}

/// One interop check against a running server.
type Check = fn(&Server) -> Result<(), Failed>;

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let tests: [(&str, Check); 8] = [
        (
            "interop::models_lists_the_served_model",
            models_lists_the_served_model,
        ),
        (
            "interop::non_streaming_answer_has_usage",
            non_streaming_answer_has_usage,
        ),
        (
            "interop::streaming_answer_has_timings_and_usage",
            streaming_answer_has_timings_and_usage,
        ),
        (
            "interop::greedy_stream_and_body_agree",
            greedy_stream_and_body_agree,
        ),
        (
            "interop::jpeg_images_are_accepted",
            jpeg_images_are_accepted,
        ),
        ("interop::eyetest_run_end_to_end", eyetest_run_end_to_end),
        ("interop::judge_path_is_plumbed", judge_path_is_plumbed),
        (
            "interop::regrade_and_agreement_on_a_real_run",
            regrade_and_agreement_on_a_real_run,
        ),
    ];
    let trials = tests
        .into_iter()
        .map(|(name, f)| {
            Trial::ignorable_test(name, move || match server() {
                None => Ok(Completion::ignored_with(format!(
                    "{URL_ENV} not set: start ../shared/interop/real-vlm-server.sh and set {URL_ENV}=http://127.0.0.1:8011/v1"
                ))),
                Some(s) => f(&s).map(|()| Completion::Completed),
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
