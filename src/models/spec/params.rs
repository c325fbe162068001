//! The parameter map of one model: values given by a front (command-line text or typed
//! values from Python), checked against the model's [`ParamSpec`]s, with defaults filled
//! in and every value used recorded (the `params` object of a run's output).

use super::{ModelSpec, ParamKind, ParamSpec};
use crate::error::{Error, Result};
use nalgebra::DMatrix;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// One given parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// Text, parsed by the parameter's kind (the command line's `--param key=value`).
    Text(String),
    /// A real number.
    Float(f64),
    /// An integer (a count when non-negative).
    Int(i64),
    /// A flag.
    Flag(bool),
    /// A list of real numbers.
    Vector(Vec<f64>),
    /// A matrix (a teacher given as an array: its shape sets the dimensions).
    Matrix(DMatrix<f64>),
}

impl ParamValue {
    fn show(&self) -> String {
        match self {
            ParamValue::Text(t) => t.clone(),
            ParamValue::Float(v) => v.to_string(),
            ParamValue::Int(v) => v.to_string(),
            ParamValue::Flag(v) => v.to_string(),
            ParamValue::Vector(v) => format!("{v:?}"),
            ParamValue::Matrix(m) => format!("{}×{} matrix", m.nrows(), m.ncols()),
        }
    }
}

/// The parameters of one model, checked against its spec.
#[derive(Debug, Clone)]
pub struct Params {
    spec: &'static ModelSpec,
    given: BTreeMap<&'static str, ParamValue>,
    resolved: serde_json::Map<String, Value>,
}

/// `text` as a finite real number.
fn parse_float(key: &'static str, text: &str) -> Result<f64> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| Error::invalid(key, text, format!("`{text}` is not a number")))?;
    if !v.is_finite() {
        return Err(Error::invalid(key, text, "must be finite"));
    }
    Ok(v)
}

impl Params {
    /// Checks `given` (key, value) pairs against `spec`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an unknown or repeated key.
    pub fn new(
        spec: &'static ModelSpec,
        given: impl IntoIterator<Item = (String, ParamValue)>,
    ) -> Result<Self> {
        let mut map = BTreeMap::new();
        for (key, value) in given {
            let key = key.trim();
            let q = spec.param(key).ok_or_else(|| {
                Error::invalid(
                    "param",
                    key,
                    format!(
                        "unknown parameter of model {} (known: {})",
                        spec.name,
                        spec.params.iter().map(|q| q.key).collect::<Vec<_>>().join(", ")
                    ),
                )
            })?;
            if map.insert(q.key, value).is_some() {
                return Err(Error::invalid("param", key, "given twice"));
            }
        }
        Ok(Params {
            spec,
            given: map,
            resolved: serde_json::Map::new(),
        })
    }

    /// Parses `key=value` strings (the command line's `--param`).
    ///
    /// # Errors
    /// A pair without `=`, unknown or repeated keys ([`Error::InvalidParameter`]).
    pub fn parse(spec: &'static ModelSpec, pairs: &[String]) -> Result<Self> {
        let pairs = pairs
            .iter()
            .map(|pair| {
                pair.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), ParamValue::Text(v.trim().to_string())))
                    .ok_or_else(|| Error::invalid("param", pair, "expected key=value"))
            })
            .collect::<Result<Vec<_>>>()?;
        Params::new(spec, pairs)
    }

    /// The model these parameters are for.
    pub fn spec(&self) -> &'static ModelSpec {
        self.spec
    }

    fn spec_of(&self, key: &str) -> &'static ParamSpec {
        self.spec.param(key).expect("keys are the spec's")
    }

    fn value(&self, key: &'static str) -> ParamValue {
        match self.given.get(key) {
            Some(v) => v.clone(),
            None => ParamValue::Text(self.spec_of(key).default.to_string()),
        }
    }

    /// Whether the front gave `key`.
    pub fn is_given(&self, key: &str) -> bool {
        self.given.contains_key(key)
    }

    /// Records `value` as the resolved value of `key`.
    pub fn record(&mut self, key: &str, value: Value) {
        self.resolved.insert(key.into(), value);
    }

    /// A real parameter.
    ///
    /// # Errors
    /// Not a finite number.
    pub fn float(&mut self, key: &'static str) -> Result<f64> {
        let v = match self.value(key) {
            ParamValue::Text(t) => parse_float(key, &t)?,
            ParamValue::Float(v) => v,
            ParamValue::Int(v) => v as f64,
            other => return Err(Error::invalid(key, other.show(), "is not a number")),
        };
        self.record(key, json!(v));
        Ok(v)
    }

    /// A non-negative integer parameter.
    ///
    /// # Errors
    /// Not a non-negative integer.
    pub fn count(&mut self, key: &'static str) -> Result<u64> {
        let value = self.value(key);
        let v = match &value {
            ParamValue::Text(t) => t.trim().parse::<u64>().ok(),
            ParamValue::Int(v) => u64::try_from(*v).ok(),
            _ => None,
        }
        .ok_or_else(|| {
            let text = value.show();
            Error::invalid(key, &text, format!("`{text}` is not a non-negative integer"))
        })?;
        self.record(key, json!(v));
        Ok(v)
    }

    /// A non-negative integer parameter whose default is `fallback` (another parameter's
    /// value).
    ///
    /// # Errors
    /// As [`Params::count`].
    pub fn count_or(&mut self, key: &'static str, fallback: u64) -> Result<u64> {
        if self.is_given(key) {
            return self.count(key);
        }
        self.record(key, json!(fallback));
        Ok(fallback)
    }

    /// A list parameter; `fallback` replaces the default when it is `Some`.
    ///
    /// # Errors
    /// An empty list or an entry that is not a finite number (text); a matrix.
    pub fn list(&mut self, key: &'static str, fallback: Option<Vec<f64>>) -> Result<Vec<f64>> {
        let v = match (self.given.get(key).cloned(), fallback) {
            (None, Some(f)) => f,
            (given, _) => match given.unwrap_or_else(|| self.value(key)) {
                ParamValue::Text(text) => {
                    if text.trim().is_empty() {
                        return Err(Error::invalid(key, "", "the list is empty"));
                    }
                    text.split(',')
                        .map(|t| parse_float(key, t))
                        .collect::<Result<Vec<f64>>>()?
                }
                ParamValue::Vector(v) => v,
                ParamValue::Float(v) => vec![v],
                other => return Err(Error::invalid(key, other.show(), "is not a list of numbers")),
            },
        };
        self.record(key, json!(v));
        Ok(v)
    }

    /// A matrix given as such (Python's arrays), `None` when the parameter was not given
    /// as a matrix.
    pub fn matrix(&mut self, key: &'static str) -> Option<DMatrix<f64>> {
        match self.given.get(key) {
            Some(ParamValue::Matrix(m)) => Some(m.clone()),
            _ => None,
        }
    }

    /// A flag (`true`/`false`).
    ///
    /// # Errors
    /// Another value.
    pub fn flag(&mut self, key: &'static str) -> Result<bool> {
        let v = match self.value(key) {
            ParamValue::Flag(v) => v,
            ParamValue::Text(t) if t == "true" => true,
            ParamValue::Text(t) if t == "false" => false,
            other => return Err(Error::invalid(key, other.show(), "must be true or false")),
        };
        self.record(key, json!(v));
        Ok(v)
    }

    /// The text of a given parameter (`None` when not given; not recorded until used).
    pub fn text(&mut self, key: &'static str) -> Option<String> {
        let v = match self.given.get(key)? {
            ParamValue::Text(t) => t.clone(),
            other => other.show(),
        };
        self.record(key, json!(v));
        Some(v)
    }

    /// A choice parameter (one of the words of its [`ParamKind::Choice`]; `aliases` maps
    /// other accepted words to them).
    ///
    /// # Errors
    /// Another word.
    pub fn choice(&mut self, key: &'static str) -> Result<&'static str> {
        let text = match self.value(key) {
            ParamValue::Text(t) => t,
            other => other.show(),
        };
        let ParamKind::Choice(options) = self.spec_of(key).kind else {
            unreachable!("{key} is a choice")
        };
        let v = options
            .iter()
            .find(|o| **o == text)
            .ok_or_else(|| Error::invalid(key, &text, format!("must be one of {}", options.join(", "))))?;
        self.record(key, json!(v));
        Ok(v)
    }

    /// The resolved values (defaults filled in) as a JSON object.
    pub fn resolved(&self) -> Value {
        Value::Object(self.resolved.clone())
    }
}
