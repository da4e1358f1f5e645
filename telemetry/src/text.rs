//! The text format's fields: as tracing-subscriber's default (`name=value`, the message
//! bare), less the `otel.*` fields, which only name and shape the OpenTelemetry span
//! (`otel.name`, `otel.kind`) and would repeat in every log line written inside it.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::FormatFields;

pub(crate) struct TextFields;

struct Visitor<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visit for Visitor<'_, '_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if self.result.is_err() || name.starts_with("otel.") {
            return;
        }
        if !self.first {
            self.result = self.writer.write_char(' ');
        }
        self.first = false;
        if self.result.is_ok() {
            self.result = if name == "message" {
                write!(self.writer, "{value:?}")
            } else {
                write!(self.writer, "{name}={value:?}")
            };
        }
    }
}

impl<'w> FormatFields<'w> for TextFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut v = Visitor {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut v);
        v.result
    }
}
