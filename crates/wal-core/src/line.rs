//! The WAL line (see `shared/spec/wal-format.md` and `docs/formats.md`) and the writer's
//! acknowledgement record.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Order status codes of the WAL line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Status {
    /// 0: created, not yet accepted by the exchange.
    New = 0,
    /// 1: accepted by the exchange.
    Accepted = 1,
    /// 2: partially filled.
    PartiallyFilled = 2,
    /// 3: filled (terminal).
    Filled = 3,
    /// 4: canceled (terminal).
    Canceled = 4,
    /// 5: rejected (terminal; never reaches the ledger).
    Rejected = 5,
}

impl Status {
    /// The status for a code, if valid (0..=5).
    #[must_use]
    pub fn from_code(code: u64) -> Option<Status> {
        Some(match code {
            0 => Status::New,
            1 => Status::Accepted,
            2 => Status::PartiallyFilled,
            3 => Status::Filled,
            4 => Status::Canceled,
            5 => Status::Rejected,
            _ => return None,
        })
    }

    /// The numeric code.
    #[must_use]
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Filled, canceled and rejected are terminal.
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Filled | Status::Canceled | Status::Rejected)
    }

    /// Lower-case name, for messages.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Accepted => "accepted",
            Status::PartiallyFilled => "partially_filled",
            Status::Filled => "filled",
            Status::Canceled => "canceled",
            Status::Rejected => "rejected",
        }
    }

    /// The recovery rules' allowed transitions (a change of status; same-state repeats are handled
    /// separately as idempotent).
    #[must_use]
    pub fn may_become(self, next: Status) -> bool {
        use Status::{Accepted, Canceled, Filled, New, PartiallyFilled, Rejected};
        match self {
            New => matches!(
                next,
                Accepted | PartiallyFilled | Filled | Canceled | Rejected
            ),
            Accepted | PartiallyFilled => {
                matches!(next, PartiallyFilled | Filled | Canceled | Rejected)
            }
            Filled | Canceled | Rejected => false,
        }
    }
}

/// One WAL line as read, borrowing its strings from the line bytes where it can (no allocation
/// unless a string holds escapes). Unknown keys are accepted (additive fields of newer engines).
/// Legacy lines lack `exchange_order_id`, `total_volume`, `avg_fill_price`, `reason` and
/// `trace_id`; an absent optional string reads as `""` (serde cannot borrow through
/// `Option<Cow>`, and an owned copy per field per line costs a third of the replay time), so a
/// `null` string is a parse error.
#[derive(Debug, Deserialize)]
pub struct RawEvent<'a> {
    /// Sequence number, starting at 0.
    pub seq: u64,
    /// `order` or `trade` (checked by [`RawEvent::validate`]).
    #[serde(borrow)]
    pub kind: Cow<'a, str>,
    /// Event time, epoch ns.
    pub ts_ns: i64,
    /// Account; optional for replay.
    #[serde(borrow, default)]
    pub account_id: Cow<'a, str>,
    /// Identifies the order.
    #[serde(borrow)]
    pub client_order_id: Cow<'a, str>,
    /// Exchange order id (newer lines).
    #[serde(borrow, default)]
    pub exchange_order_id: Cow<'a, str>,
    /// Instrument, e.g. `SHFE.ag2406`; optional for replay.
    #[serde(borrow, default)]
    pub instrument_id: Cow<'a, str>,
    /// Status code 0..=5 (checked by [`RawEvent::validate`]).
    pub status: u64,
    /// Total volume (newer lines); absent means "taken as `filled_volume`".
    #[serde(default)]
    pub total_volume: Option<u64>,
    /// Cumulative filled volume.
    pub filled_volume: u64,
    /// Average fill price (newer lines), 0 when absent.
    #[serde(default)]
    pub avg_fill_price: Option<f64>,
    /// Free text (newer lines).
    #[serde(borrow, default)]
    pub reason: Cow<'a, str>,
    /// Trace id (newer lines).
    #[serde(borrow, default)]
    pub trace_id: Cow<'a, str>,
}

/// Why a line is not a WAL event: the field at fault and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// The key at fault, or `line` for the whole line.
    pub field: String,
    /// What was wrong.
    pub message: String,
}

impl<'a> RawEvent<'a> {
    /// Parse one line (without its newline) and check `kind` and `status`.
    pub fn parse(line: &'a [u8]) -> Result<(RawEvent<'a>, Status), LineError> {
        // One UTF-8 check of the whole line is cheaper than serde_json's check of every string.
        let text = std::str::from_utf8(line).map_err(|e| LineError {
            field: "line".into(),
            message: format!("not a WAL event object: not UTF-8 ({e})"),
        })?;
        let ev: RawEvent<'a> = serde_json::from_str(text).map_err(|e| {
            let msg = e.to_string();
            let field = msg
                .split('`')
                .nth(1)
                .filter(|_| msg.contains("field"))
                .unwrap_or("line")
                .to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            let message = if field == "line" {
                format!("not a WAL event object: {msg}")
            } else {
                msg
            };
            LineError { field, message }
        })?;
        let status = ev.validate()?;
        Ok((ev, status))
    }

    /// Check `kind` (`order` or `trade`) and `status` (0..=5).
    pub fn validate(&self) -> Result<Status, LineError> {
        if self.kind != "order" && self.kind != "trade" {
            return Err(LineError {
                field: "kind".into(),
                message: format!("expected \"order\" or \"trade\", found {:?}", self.kind),
            });
        }
        Status::from_code(self.status).ok_or_else(|| LineError {
            field: "status".into(),
            message: format!("expected 0..=5, found {}", self.status),
        })
    }
}

/// One WAL line as the engine writes it (extended form, keys in the engine's order).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WalLine {
    /// Sequence number.
    pub seq: u64,
    /// `order` or `trade`.
    pub kind: String,
    /// Event time, epoch ns.
    pub ts_ns: i64,
    /// Account.
    pub account_id: String,
    /// Client order id.
    pub client_order_id: String,
    /// Exchange order id (empty until accepted).
    pub exchange_order_id: String,
    /// Instrument.
    pub instrument_id: String,
    /// Status code.
    pub status: u8,
    /// Total volume.
    pub total_volume: u64,
    /// Cumulative filled volume.
    pub filled_volume: u64,
    /// Average fill price.
    pub avg_fill_price: f64,
    /// Free text.
    pub reason: String,
    /// Trace id.
    pub trace_id: String,
}

impl WalLine {
    /// Append the line and its newline to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        // Serialising a plain struct of strings and numbers into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, self);
        out.push(b'\n');
    }
}

/// The writer's acknowledgement, one JSONL record per durable event on its stdout:
/// `{"kind":"wal.ack","ts_ns":...,"acked_seq":N}`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ack {
    /// Always `wal.ack`.
    pub kind: AckKind,
    /// Wall-clock epoch ns when the ack was issued.
    pub ts_ns: i64,
    /// The acknowledged seq.
    pub acked_seq: u64,
}

/// The `kind` tag of an [`Ack`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum AckKind {
    /// `wal.ack`.
    #[serde(rename = "wal.ack")]
    WalAck,
}

impl Ack {
    /// An ack of `seq` at `ts_ns`.
    #[must_use]
    pub fn new(seq: u64, ts_ns: i64) -> Self {
        Ack {
            kind: AckKind::WalAck,
            ts_ns,
            acked_seq: seq,
        }
    }

    /// Append the record and its newline to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let _ = serde_json::to_writer(&mut *out, self);
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_extended_and_legacy() {
        let ext = br#"{"seq":7,"kind":"order","ts_ns":1770734543207087000,"account_id":"sim-account","client_order_id":"c-0007","exchange_order_id":"","instrument_id":"SHFE.ag2406","status":1,"total_volume":2,"filled_volume":0,"avg_fill_price":0,"reason":"","trace_id":"t-0007"}"#;
        let (ev, st) = RawEvent::parse(ext).unwrap();
        assert_eq!(
            (ev.seq, st, ev.total_volume),
            (7, Status::Accepted, Some(2))
        );
        assert!(matches!(ev.client_order_id, Cow::Borrowed("c-0007")));
        let legacy = br#"{"seq":0,"kind":"trade","ts_ns":1,"account_id":"a","client_order_id":"c\"1","instrument_id":"i","status":3,"filled_volume":2}"#;
        let (ev, st) = RawEvent::parse(legacy).unwrap();
        assert_eq!(
            (st, ev.total_volume, ev.client_order_id.as_ref()),
            (Status::Filled, None, "c\"1")
        );
    }

    #[test]
    fn rejects_bad_kind_status_and_missing() {
        let e = RawEvent::parse(
            br#"{"seq":0,"kind":"x","ts_ns":1,"client_order_id":"c","status":0,"filled_volume":0}"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "kind");
        let e = RawEvent::parse(br#"{"seq":0,"kind":"order","ts_ns":1,"client_order_id":"c","status":9,"filled_volume":0}"#).unwrap_err();
        assert_eq!(e.field, "status");
        let e =
            RawEvent::parse(br#"{"seq":0,"kind":"order","ts_ns":1,"status":0,"filled_volume":0}"#)
                .unwrap_err();
        assert_eq!(e.field, "client_order_id");
        assert_eq!(e.message, "missing field `client_order_id`");
        let e = RawEvent::parse(b"garbage").unwrap_err();
        assert_eq!(e.field, "line");
    }

    #[test]
    fn writes_engine_order_and_acks() {
        let l = WalLine {
            seq: 1,
            kind: "order".into(),
            ts_ns: 2,
            account_id: "a".into(),
            client_order_id: "c".into(),
            exchange_order_id: String::new(),
            instrument_id: "i".into(),
            status: 0,
            total_volume: 3,
            filled_volume: 0,
            avg_fill_price: 0.0,
            reason: String::new(),
            trace_id: "t".into(),
        };
        let mut v = Vec::new();
        l.write_to(&mut v);
        let s = String::from_utf8(v).unwrap();
        assert!(s.starts_with(r#"{"seq":1,"kind":"order","ts_ns":2,"account_id":"a","client_order_id":"c","exchange_order_id":"","instrument_id":"i","status":0,"total_volume":3"#), "{s}");
        assert!(s.ends_with("}\n"));
        let mut v = Vec::new();
        Ack::new(5, 9).write_to(&mut v);
        assert_eq!(v, b"{\"kind\":\"wal.ack\",\"ts_ns\":9,\"acked_seq\":5}\n");
    }
}
