//! Reading webhookd's `/metrics` (Prometheus' text format) for the bench's
//! own figures: the `--profile` hand-off table and `cluster`'s batch sizes
//! read the same lines, `name<suffix>{labels} value`.

/// One sample of a metric family: its suffix (`_bucket`, `_sum`, `_count`
/// or none) and labels, and its value.
pub struct Sample<'a> {
    /// Everything between the family's name and the value.
    head: &'a str,
    pub value: f64,
}

impl<'a> Sample<'a> {
    /// Whether the sample is the family's `suffix` line (`"_sum"`…).
    pub fn is(&self, suffix: &str) -> bool {
        self.head.starts_with(suffix)
    }

    /// The value of label `name`, if the sample has it.
    pub fn label(&self, name: &str) -> Option<&'a str> {
        let head: &'a str = self.head;
        head.split_once(&format!("{name}=\""))
            .and_then(|(_, after)| after.split_once('"'))
            .map(|(value, _)| value)
    }
}

/// The samples of the family `name` in `text` (not of a family whose name
/// only begins with it); lines whose value does not parse are skipped.
pub fn samples<'a>(text: &'a str, name: &'a str) -> impl Iterator<Item = Sample<'a>> + 'a {
    text.lines().filter_map(move |line| {
        let (head, value) = line.strip_prefix(name)?.rsplit_once(' ')?;
        if !(head.is_empty() || head.starts_with(['_', '{'])) {
            return None;
        }
        Some(Sample {
            head,
            value: value.parse().ok()?,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::samples;

    #[test]
    fn reads_suffixes_labels_and_values() {
        let text = "# HELP x\n\
            x_bucket{stage=\"held\",le=\"0.5\"} 3\n\
            x_sum{stage=\"held\"} 1.25\n\
            x_count{stage=\"held\"} 4\n\
            xy_count{stage=\"held\"} 9\n\
            x_count{stage=\"other\"} nope\n";
        let read: Vec<_> = samples(text, "x").collect();
        assert_eq!(read.len(), 3, "x's lines: not xy's, not the unparsed one");
        assert!(read[0].is("_bucket") && read[0].label("le") == Some("0.5"));
        assert_eq!(read[1].label("stage"), Some("held"));
        assert!(read[1].is("_sum") && read[1].value == 1.25);
        assert!(read[2].is("_count") && read[2].value == 4.0);
        assert_eq!(read[0].label("missing"), None);
    }
}
