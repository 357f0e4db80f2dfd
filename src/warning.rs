//! Warnings the library meets while it works. It never prints them: each goes to the
//! [`Warnings`] sink its caller passed (the command line and the harnesses print them to
//! stderr), or comes back with the result it concerns (skipped result lines, in
//! [`crate::report::runs::LeftOut`]).

use std::fmt;
use std::sync::Arc;

use crate::backend::LARGE_IMAGE_BYTES;

/// Something worth telling whoever runs eyetest that does not stop the work. `Display` is
/// the whole line as it should be printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// An image over [`LARGE_IMAGE_BYTES`]: sent anyway, once per image per run.
    LargeImage {
        /// The image as the spec names it.
        shown: String,
        bytes: usize,
    },
    /// A case task ended without an outcome (it panicked): its pair has no result.
    CaseTask { message: String },
}

impl Warning {
    /// The warning for an image of `len` bytes read from `shown`, if it is over
    /// [`LARGE_IMAGE_BYTES`].
    pub fn large_image(shown: &str, len: usize) -> Option<Warning> {
        (len > LARGE_IMAGE_BYTES).then(|| Warning::LargeImage {
            shown: shown.to_string(),
            bytes: len,
        })
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::LargeImage { shown, bytes } => write!(
                f,
                "warning: image `{shown}` is {:.1} MB (over {} MB): it is sent whole, base64-encoded (a third larger), and many servers refuse requests over ~50 MB with HTTP 413; resize it unless you mean to test large uploads",
                *bytes as f64 / 1e6,
                LARGE_IMAGE_BYTES / (1024 * 1024)
            ),
            Warning::CaseTask { message } => write!(f, "eyetest: a case task failed: {message}"),
        }
    }
}

/// Where warnings go: a callback chosen by the caller. [`Warnings::none`] drops them (for
/// tests and benchmarks that look only at results).
#[derive(Clone, Default)]
pub struct Warnings(Option<Arc<dyn Fn(Warning) + Send + Sync>>);

impl Warnings {
    /// Drops every warning.
    pub fn none() -> Warnings {
        Warnings(None)
    }

    /// Hands every warning to `f`, from whichever thread met it.
    pub fn new(f: impl Fn(Warning) + Send + Sync + 'static) -> Warnings {
        Warnings(Some(Arc::new(f)))
    }

    pub fn emit(&self, w: Warning) {
        if let Some(f) = &self.0 {
            f(w)
        }
    }
}

impl fmt::Debug for Warnings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Warnings(..)"
        } else {
            "Warnings(none)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn large_images_warn_with_their_size_and_small_ones_do_not() {
        assert_eq!(Warning::large_image("a.png", LARGE_IMAGE_BYTES), None);
        let w = Warning::large_image("big.png", 21 * 1024 * 1024).unwrap();
        assert!(
            w.to_string()
                .starts_with("warning: image `big.png` is 22.0 MB (over 20 MB)"),
            "{w}"
        );
    }

    #[test]
    fn a_sink_gets_every_warning_and_none_drops_them() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = {
            let got = got.clone();
            Warnings::new(move |w| got.lock().unwrap().push(w))
        };
        let w = Warning::CaseTask {
            message: "panicked".into(),
        };
        sink.emit(w.clone());
        Warnings::none().emit(w.clone());
        assert_eq!(*got.lock().unwrap(), [w]);
    }
}
