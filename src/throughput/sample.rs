//! What the load generator hands to the throughput core.
//!
//! Durations are serialized as seconds in an `f64` rather than serde's default
//! `{ secs, nanos }` pair: recorded runs and JSON reports are read by people and by
//! Python/pandas, and `0.0523` is legible where `{"secs":0,"nanos":52300000}` is not.
//! An `f64` holds nanosecond precision for runs shorter than ~100 days, so nothing is lost.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One request of a throughput run, as the load generator measured it (monotonic clock, started just before send).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sample {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Time the request waited for a concurrency slot in the client.
    #[serde(with = "secs")]
    pub queued: Duration,
    /// Send -> first content token.
    #[serde(default, with = "secs::option")]
    pub ttft: Option<Duration>,
    /// Send -> last token / end of body.
    #[serde(with = "secs")]
    pub e2e: Duration,
    /// Gaps between successive content events.
    #[serde(default, with = "secs::vec")]
    pub itl: Vec<Duration>,
    /// From server usage; `None` = usage missing.
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
}

/// All requests at one concurrency level of one repeat, kept one by one: for tests and
/// tools that want every sample. The load generator itself produces a
/// [`super::recorder::LevelRecord`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LevelRun {
    pub concurrency: usize,
    /// First send -> last completion.
    #[serde(with = "secs")]
    pub wall: Duration,
    pub samples: Vec<Sample>,
}

/// Serde helpers writing [`Duration`]s as seconds (`f64`); see the module docs for why.
pub mod secs {
    use std::time::Duration;

    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    fn from_f64<E: serde::de::Error>(s: f64) -> Result<Duration, E> {
        Duration::try_from_secs_f64(s).map_err(|_| {
            E::custom(format!(
                "expected a non-negative number of seconds, got {s}"
            ))
        })
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        from_f64(f64::deserialize(d)?)
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_some(&d.as_secs_f64()),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            Option::<f64>::deserialize(d)?.map(from_f64).transpose()
        }
    }

    pub mod vec {
        use super::*;
        use serde::ser::SerializeSeq;

        pub fn serialize<S: Serializer>(v: &[Duration], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(v.len()))?;
            for d in v {
                seq.serialize_element(&d.as_secs_f64())?;
            }
            seq.end()
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
            Vec::<f64>::deserialize(d)?
                .into_iter()
                .map(from_f64::<D::Error>)
                .collect::<Result<_, _>>()
                .map_err(|e| D::Error::custom(format!("in itl: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip_as_seconds() {
        let s = Sample {
            ok: true,
            queued: Duration::from_micros(1500),
            ttft: Some(Duration::from_millis(52)),
            e2e: Duration::from_nanos(1_234_567_891),
            itl: vec![Duration::from_millis(10), Duration::from_micros(9_999)],
            output_tokens: Some(3),
            ..Default::default()
        };
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"ttft\":0.052"), "{json}");
        assert!(!json.contains("error"), "{json}");
        let back: Sample = serde_json::from_str(&json).unwrap();
        assert_eq!(back.e2e, s.e2e);
        assert_eq!(back.itl, s.itl);
        assert_eq!(back.ttft, s.ttft);
        assert_eq!(back.queued, s.queued);
    }

    #[test]
    fn negative_seconds_are_rejected() {
        let err = serde_json::from_str::<Sample>(r#"{"ok":true,"queued":-1,"e2e":1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("non-negative"), "{err}");
    }
}
