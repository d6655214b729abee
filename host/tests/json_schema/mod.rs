//! Just enough JSON Schema for the app-server schema test: reading one file of the bundle
//! `codex app-server generate-json-schema` writes, validating a value against a definition and
//! producing the values Codex could send for one.

use std::path::Path;

use serde_json::{json, Value};

/// One schema file of the generated bundle (each is self-contained: `#/definitions/...`).
pub struct Schema {
    pub root: Value,
}

impl Schema {
    pub fn load(dir: &Path, file: &str) -> Schema {
        let text = std::fs::read_to_string(dir.join(file))
            .unwrap_or_else(|e| panic!("{file} is not in the generated schema: {e}"));
        Schema {
            root: serde_json::from_str(&text).unwrap(),
        }
    }

    pub fn def(&self, name: &str) -> &Value {
        self.root["definitions"]
            .get(name)
            .unwrap_or_else(|| panic!("definition {name} is gone"))
    }

    pub fn resolve<'a>(&'a self, s: &'a Value) -> &'a Value {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => self.resolve(self.def(r.trim_start_matches("#/definitions/"))),
            None => s,
        }
    }

    /// The params schema of `method` in a `ClientRequest`/`ServerRequest`/`ServerNotification`
    /// union, and the name of its definition.
    pub fn method_params(&self, method: &str) -> (String, &Value) {
        let variant = self.root["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["properties"]["method"]["enum"][0] == method)
            .unwrap_or_else(|| panic!("Codex no longer has the method `{method}`"));
        let r = variant["properties"]["params"]["$ref"].as_str().unwrap();
        let name = r.trim_start_matches("#/definitions/").to_string();
        (name.clone(), self.def(&name))
    }

    pub fn enum_values(&self, def: &str) -> Vec<String> {
        let d = self.def(def);
        let mut out = Vec::new();
        for branch in d["oneOf"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| vec![d.clone()])
        {
            for v in branch["enum"].as_array().into_iter().flatten() {
                out.push(v.as_str().unwrap().to_string());
            }
        }
        out
    }

    /// Where `value` breaks `schema` (empty: it validates). Enough of JSON Schema for Codex's:
    /// `$ref`, `allOf`/`anyOf`/`oneOf`, `type`, `enum`, `properties`, `required`,
    /// `additionalProperties: false`, `items`.
    pub fn errors(&self, schema: &Value, value: &Value, at: &str) -> Vec<String> {
        let s = self.resolve(schema);
        let mut errs = Vec::new();
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for sub in all {
                errs.extend(self.errors(sub, value, at));
            }
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(any) = s.get(key).and_then(Value::as_array) {
                if !any.iter().any(|sub| self.errors(sub, value, at).is_empty()) {
                    errs.push(format!("{at}: {value} matches no branch of {key}"));
                }
            }
        }
        if let Some(e) = s.get("enum").and_then(Value::as_array) {
            if !e.contains(value) {
                errs.push(format!("{at}: {value} is not one of {e:?}"));
            }
        }
        if let Some(t) = s.get("type") {
            let types: Vec<&str> = match t {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            if !types.iter().any(|t| type_matches(t, value)) {
                errs.push(format!("{at}: {value} is not of type {types:?}"));
                return errs;
            }
        }
        if let Value::Object(obj) = value {
            let props = s.get("properties").and_then(Value::as_object);
            for req in s
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if !obj.contains_key(req.as_str().unwrap()) {
                    errs.push(format!(
                        "{at}: required field `{}` is missing",
                        req.as_str().unwrap()
                    ));
                }
            }
            for (k, v) in obj {
                match props.and_then(|p| p.get(k)) {
                    Some(sub) => errs.extend(self.errors(sub, v, &format!("{at}.{k}"))),
                    None if s.get("additionalProperties").is_some_and(Value::is_object) => {
                        let sub = &s["additionalProperties"];
                        errs.extend(self.errors(sub, v, &format!("{at}.{k}")))
                    }
                    None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        errs.push(format!("{at}: field `{k}` is not allowed"))
                    }
                    None if props.is_some() && s.get("additionalProperties").is_none() => {
                        errs.push(format!("{at}: Codex does not know the field `{k}`"))
                    }
                    None => {}
                }
            }
        }
        if let (Value::Array(items), Some(item_schema)) = (value, s.get("items")) {
            for (i, v) in items.iter().enumerate() {
                errs.extend(self.errors(item_schema, v, &format!("{at}[{i}]")));
            }
        }
        errs
    }

    /// A value Codex could send for `schema`: only required fields (`full` false), or every
    /// field (`full` true, down to a depth limit). The first branch of each union.
    pub fn sample(&self, schema: &Value, full: bool, depth: usize) -> Value {
        let s = self.resolve(schema);
        if let Some(e) = s.get("enum").and_then(Value::as_array) {
            return e[0].clone();
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(branches) = s.get(key).and_then(Value::as_array) {
                let branch = branches
                    .iter()
                    .find(|b| self.resolve(b).get("type") != Some(&json!("null")))
                    .unwrap_or(&branches[0]);
                let mut v = self.sample(branch, full, depth);
                // `oneOf` alongside `properties` (e.g. image input): merge both.
                if s.get("properties").is_some() {
                    let own = self.sample_object(s, full, depth);
                    if let (Value::Object(v), Value::Object(own)) = (&mut v, own) {
                        v.extend(own);
                    }
                }
                return v;
            }
        }
        let ty = match s.get("type") {
            Some(Value::String(t)) => t.as_str(),
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null")
                .unwrap_or("null"),
            _ if s.get("properties").is_some() => "object",
            _ => "null",
        };
        match ty {
            "object" => self.sample_object(s, full, depth),
            "array" if full && depth < 10 => match s.get("items") {
                Some(items) => json!([self.sample(items, full, depth + 1)]),
                None => json!([]),
            },
            "array" => json!([]),
            "string" => json!("x"),
            "integer" => json!(1),
            "number" => json!(1.5),
            "boolean" => json!(false),
            _ => Value::Null,
        }
    }

    pub fn sample_object(&self, s: &Value, full: bool, depth: usize) -> Value {
        let required: Vec<&str> = s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let mut obj = serde_json::Map::new();
        for (k, sub) in s
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if required.contains(&k.as_str()) || (full && depth < 10) {
                obj.insert(k.clone(), self.sample(sub, full, depth + 1));
            }
        }
        Value::Object(obj)
    }
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => true,
    }
}
