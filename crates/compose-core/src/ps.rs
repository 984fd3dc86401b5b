//! `compose ps` rows in the original's shape (reference §1.7), read from a live engine or from a
//! saved `compose ps --format json` file.
//!
//! **Reading a saved file** ([`parse_ps_json`]) follows the original exactly: the whole text is
//! parsed as JSON (an array or a single object); if that fails, as NDJSON, one object per line (a
//! line that is not JSON is an error naming `file:line`, where the original crashed); non-object
//! items are dropped. Fields: service from the first of `Service`, `service`, `Name`, `name`; state
//! from `State`, `state`, `Status`, `status` (lower-cased); health from `Health`, `health`
//! (lower-cased); labels from `Labels`/`labels` (a comma-separated `k=v` string, or an object).
//!
//! **Live rows** ([`crate::Project::ps`]) come from `docker ps -a` + `docker inspect` on the
//! project's containers (label `com.docker.compose.project`), the same for Compose v1 and v2, and
//! include exited containers, so a crashed service is unhealthy rather than missing.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use evidence_core::{EvidenceError, Result};

/// One published port of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publisher {
    /// Host address it is bound to (`127.0.0.1`).
    pub url: String,
    /// Port inside the container.
    pub target_port: u16,
    /// Port on the host.
    pub published_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// One container row, as the health checkers see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PsRow {
    /// Compose service name (`redis-primary`). From a saved file without `Service`, the first of
    /// the §1.7 fallbacks (which may be the container name, as in the original).
    pub service: String,
    /// Container name (`quant-hft-prodlike_redis-primary_1` or `...-redis-primary-1`); empty when
    /// the saved row has none.
    pub name: String,
    /// Lower-cased state: `running`, `exited`, `created`, `restarting`, ... (or whatever the saved
    /// row said).
    pub state: String,
    /// Lower-cased health: `healthy`, `unhealthy`, `starting`, or empty when the service has no
    /// healthcheck.
    pub health: String,
    /// Exit code of an exited container (live rows; saved rows when they carry `ExitCode`).
    pub exit_code: Option<i64>,
    /// Container labels.
    pub labels: BTreeMap<String, String>,
    /// Published ports (live rows; saved v2 rows with `Publishers`).
    pub publishers: Vec<Publisher>,
    /// Container id (live rows).
    pub id: String,
}

impl PsRow {
    /// The original's rule: state exactly `running` or `up`, and health empty or `healthy`.
    #[must_use]
    pub fn healthy(&self) -> bool {
        (self.state == "running" || self.state == "up")
            && (self.health.is_empty() || self.health == "healthy")
    }

    /// The row as Compose v2 prints it with `ps --format json` (`ID`, `Name`, `Service`, `State`,
    /// `Health`, `ExitCode`, `Labels` as a comma-separated string, `Publishers`), so that
    /// [`parse_ps_json`] and the original's checker read it back unchanged.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let labels = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let publishers: Vec<Value> = self
            .publishers
            .iter()
            .map(|p| {
                json!({
                    "URL": p.url,
                    "TargetPort": p.target_port,
                    "PublishedPort": p.published_port,
                    "Protocol": p.protocol,
                })
            })
            .collect();
        json!({
            "ID": self.id,
            "Name": self.name,
            "Service": self.service,
            "State": self.state,
            "Health": self.health,
            "ExitCode": self.exit_code.unwrap_or(0),
            "Labels": labels,
            "Publishers": publishers,
        })
    }

    /// The label `key` (for example `quant_hft.host`), if set.
    #[must_use]
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

/// Parse a saved `compose ps --format json` text as §1.7 says. `source` labels errors.
pub fn parse_ps_json(text: &str, source: &str) -> Result<Vec<PsRow>> {
    let items: Vec<Value> = match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(a)) => a,
        Ok(v) => vec![v],
        Err(_) => {
            let mut v = Vec::new();
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                let item: Value = serde_json::from_str(line).map_err(|e| {
                    EvidenceError::parse(source, i + 1, "line", "a JSON object", e.to_string())
                })?;
                v.push(item);
            }
            v
        }
    };
    Ok(items
        .iter()
        .filter_map(Value::as_object)
        .map(row_from_saved)
        .collect())
}

fn first_str(o: &Map<String, Value>, keys: &[&str]) -> String {
    keys.iter()
        .find_map(|k| o.get(*k).and_then(Value::as_str))
        .unwrap_or_default()
        .to_string()
}

fn row_from_saved(o: &Map<String, Value>) -> PsRow {
    let labels = match o.get("Labels").or_else(|| o.get("labels")) {
        Some(Value::String(s)) => parse_label_string(s),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
        _ => BTreeMap::new(),
    };
    let publishers = o
        .get("Publishers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    Some(Publisher {
                        url: p.get("URL")?.as_str()?.to_string(),
                        target_port: u16::try_from(p.get("TargetPort")?.as_u64()?).ok()?,
                        published_port: u16::try_from(p.get("PublishedPort")?.as_u64()?).ok()?,
                        protocol: p
                            .get("Protocol")
                            .and_then(Value::as_str)
                            .unwrap_or("tcp")
                            .to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    PsRow {
        service: first_str(o, &["Service", "service", "Name", "name"]),
        name: first_str(o, &["Name", "name"]),
        state: first_str(o, &["State", "state", "Status", "status"]).to_lowercase(),
        health: first_str(o, &["Health", "health"]).to_lowercase(),
        exit_code: o.get("ExitCode").and_then(Value::as_i64),
        labels,
        publishers,
        id: first_str(o, &["ID", "Id", "id"]),
    }
}

/// `a=b,c=d` → map (the original split on commas; a value containing a comma breaks there too).
fn parse_label_string(s: &str) -> BTreeMap<String, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
            None => (p.trim().to_string(), String::new()),
        })
        .collect()
}

/// Rows from `docker inspect` output (a JSON array of containers). `source` labels errors.
pub(crate) fn rows_from_inspect(text: &str, source: &str) -> Result<Vec<PsRow>> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        EvidenceError::parse(source, 0, "docker inspect", "a JSON array", e.to_string())
    })?;
    let Value::Array(items) = v else {
        return Err(EvidenceError::parse(
            source,
            0,
            "docker inspect",
            "a JSON array",
            "another JSON value",
        ));
    };
    let mut rows = Vec::new();
    for c in &items {
        let labels: BTreeMap<String, String> = c
            .pointer("/Config/Labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let service = labels
            .get("com.docker.compose.service")
            .cloned()
            .unwrap_or_default();
        let name = c
            .get("Name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string();
        let state = c
            .pointer("/State/Status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_lowercase();
        let health = c
            .pointer("/State/Health/Status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_lowercase();
        let exit_code = c.pointer("/State/ExitCode").and_then(Value::as_i64);
        let mut publishers = Vec::new();
        if let Some(ports) = c
            .pointer("/NetworkSettings/Ports")
            .and_then(Value::as_object)
        {
            for (key, binds) in ports {
                let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
                let Ok(target) = port.parse::<u16>() else {
                    continue;
                };
                for b in binds.as_array().into_iter().flatten() {
                    let ip = b.get("HostIp").and_then(Value::as_str).unwrap_or_default();
                    let Some(hp) = b
                        .get("HostPort")
                        .and_then(Value::as_str)
                        .and_then(|p| p.parse::<u16>().ok())
                    else {
                        continue;
                    };
                    publishers.push(Publisher {
                        url: ip.to_string(),
                        target_port: target,
                        published_port: hp,
                        protocol: proto.to_string(),
                    });
                }
            }
        }
        publishers.sort_by(|a, b| (a.target_port, &a.url).cmp(&(b.target_port, &b.url)));
        rows.push(PsRow {
            service,
            name,
            state,
            health,
            exit_code,
            labels,
            publishers,
            id: c
                .get("Id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .chars()
                .take(12)
                .collect(),
        });
    }
    rows.sort_by(|a, b| (&a.service, &a.name).cmp(&(&b.service, &b.name)));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_object_and_ndjson() {
        let a = parse_ps_json(
            r#"[{"Service":"redis-primary","State":"running","Health":"healthy"},3,{"Name":"c1","Status":"Up 2 minutes"}]"#,
            "x",
        )
        .unwrap();
        assert_eq!(a.len(), 2);
        assert!(a[0].healthy());
        assert_eq!(a[1].service, "c1");
        assert_eq!(a[1].state, "up 2 minutes");
        assert!(!a[1].healthy());

        let one = parse_ps_json(r#"{"service":"x","state":"UP","health":""}"#, "x").unwrap();
        assert_eq!(one.len(), 1);
        assert!(one[0].healthy());

        let nd = parse_ps_json(
            "{\"Service\":\"a\",\"State\":\"running\",\"Health\":\"starting\",\"Labels\":\"quant_hft.host=h1,quant_hft.role=primary\"}\n\n{\"Service\":\"b\",\"State\":\"exited\",\"ExitCode\":137}\n",
            "x",
        )
        .unwrap();
        assert_eq!(nd.len(), 2);
        assert!(!nd[0].healthy());
        assert_eq!(nd[0].label("quant_hft.host"), Some("h1"));
        assert_eq!(nd[0].label("quant_hft.role"), Some("primary"));
        assert_eq!(nd[1].exit_code, Some(137));
    }

    #[test]
    fn a_bad_ndjson_line_names_its_line() {
        let e = parse_ps_json("{\"Service\":\"a\"}\nnot json\n", "ps.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("ps.json:2: line: expected a JSON object"),
            "{e}"
        );
    }

    #[test]
    fn to_json_round_trips() {
        let r = PsRow {
            service: "s".into(),
            name: "p_s_1".into(),
            state: "exited".into(),
            health: "unhealthy".into(),
            exit_code: Some(137),
            labels: [("a".to_string(), "b".to_string())].into_iter().collect(),
            publishers: vec![Publisher {
                url: "127.0.0.1".into(),
                target_port: 6379,
                published_port: 40000,
                protocol: "tcp".into(),
            }],
            id: "abc".into(),
        };
        let back = parse_ps_json(&r.to_json().to_string(), "x").unwrap();
        assert_eq!(back, vec![r]);
    }

    #[test]
    fn inspect_rows() {
        let text = r#"[{"Id":"0123456789abcdef","Name":"/p_redis-replica_1",
          "State":{"Status":"exited","ExitCode":137,"Health":{"Status":"unhealthy"}},
          "Config":{"Labels":{"com.docker.compose.service":"redis-replica","com.docker.compose.project":"p"}},
          "NetworkSettings":{"Ports":{"6379/tcp":[{"HostIp":"127.0.0.1","HostPort":"40001"}],"16379/tcp":null}}}]"#;
        let rows = rows_from_inspect(text, "x").unwrap();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.service, "redis-replica");
        assert_eq!(r.name, "p_redis-replica_1");
        assert_eq!(r.state, "exited");
        assert_eq!(r.health, "unhealthy");
        assert_eq!(r.exit_code, Some(137));
        assert_eq!(r.id, "0123456789ab");
        assert_eq!(r.publishers.len(), 1);
        assert_eq!(r.publishers[0].published_port, 40001);
        assert!(!r.healthy());
    }
}
