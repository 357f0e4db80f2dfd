//! `eyetest fetch`: downloads the manifest photos the project's specs use into the photo
//! cache, verified. The only command that downloads photos: runs and `cargo test` never do.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::fetch::{self, FetchEvent, FetchOptions};

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Fetch every photo of every manifest, not only those the specs use.
    #[arg(long)]
    all: bool,
    /// Only check the cache (size and sha256 of each photo) and download nothing; exits 1
    /// when a photo is missing or damaged.
    #[arg(long)]
    check: bool,
    /// Fetch from a mirror instead of each photo's URL: MIRROR/MANIFEST/NAME, e.g.
    /// `http://mirror.example/photos/study/elephant.png`.
    #[arg(long, env = "EYETEST_PHOTO_MIRROR", value_name = "URL")]
    mirror: Option<String>,
    /// PEM file of a CA to trust (a company proxy or a private mirror), on top of the bundled roots.
    #[arg(long, env = "EYETEST_FETCH_CA_FILE", value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Seconds to wait for the server to connect, answer, or send the next piece of a body.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    timeout_s: f64,
}

pub fn run(root: &Path, args: FetchArgs) -> ExitCode {
    let Some(suite) = super::load(root) else {
        return ExitCode::FAILURE;
    };
    let photos = if args.all {
        match fetch::Manifests::load(root) {
            Ok(m) => m
                .manifests
                .values()
                .flat_map(|m| m.photos.iter().cloned())
                .collect(),
            Err(e) => {
                eprint!("{}", e.render(false));
                return ExitCode::FAILURE;
            }
        }
    } else {
        suite.photos()
    };
    if photos.is_empty() {
        println!("no photos to fetch: no spec uses `photo = \"MANIFEST/NAME\"`");
        return ExitCode::SUCCESS;
    }
    let total: u64 = photos.iter().map(|p| p.bytes).sum();
    if args.check {
        let mut bad = 0;
        for p in &photos {
            match fetch::cache_state(&suite.root, p) {
                fetch::CacheState::Verified => {}
                fetch::CacheState::Missing => {
                    bad += 1;
                    println!("missing  {}", p.key());
                }
                fetch::CacheState::Mismatch(why) => {
                    bad += 1;
                    println!("damaged  {}: {} {why}", p.key(), p.cache_path().display());
                }
            }
        }
        println!(
            "{} of {} photo(s) verified in {}",
            photos.len() - bad,
            photos.len(),
            fetch::CACHE_DIR
        );
        return if bad == 0 {
            ExitCode::SUCCESS
        } else {
            println!("run `eyetest fetch` to download them");
            ExitCode::FAILURE
        };
    }
    let timeout = match Duration::try_from_secs_f64(args.timeout_s) {
        Ok(t) if !t.is_zero() => t,
        _ => {
            eprintln!("error: --timeout-s must be a positive number of seconds");
            return ExitCode::FAILURE;
        }
    };
    let ca_file = args
        .ca_file
        .map(|p| if p.is_relative() { root.join(p) } else { p });
    let opts = FetchOptions {
        mirror: args.mirror,
        ca_file,
        timeout,
    };
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // Where the current photo's bytes start on the bar.
    let mut before = 0;
    let summary =
        crate::runtime::runtime().block_on(fetch::fetch(&suite.root, &photos, &opts, |event| {
            match event {
                FetchEvent::Begin { total_bytes } => bar.set_length(total_bytes),
                FetchEvent::Photo { photo } => {
                    bar.set_message(photo.key());
                    before = bar.position();
                }
                FetchEvent::Received { bytes } => bar.set_position(before + bytes),
                FetchEvent::Fetched { photo } => {
                    bar.suspend(|| eprintln!("fetched {} ({} bytes)", photo.key(), photo.bytes));
                    bar.set_position(before + photo.bytes);
                }
                FetchEvent::Failed { photo, error } => {
                    bar.suspend(|| eprintln!("FAILED  {}: {error}", photo.key()));
                    bar.set_position(before + photo.bytes);
                }
            }
        }));
    bar.finish_and_clear();
    println!(
        "{} photo(s), {}: {} fetched, {} already verified, {} failed; cache: {}",
        photos.len(),
        fetch::human_bytes(total),
        summary.fetched.len(),
        summary.present.len(),
        summary.failed.len(),
        fetch::CACHE_DIR
    );
    if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        for (key, why) in &summary.failed {
            eprintln!("error: {key}: {why}");
        }
        ExitCode::FAILURE
    }
}
