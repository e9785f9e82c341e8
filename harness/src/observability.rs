//! The Grafana dashboard and the Prometheus alerts in `observability/` use
//! only metrics the crates emit, with label values they emit, and hold what
//! their README promises: the dashboard's panels and the alerts.

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::fs;

    use chatbase_core::observe::{self, Outcome};
    use serde::Deserialize;
    use serde_json::Value;

    const DASHBOARD: &str = "observability/grafana-dashboard.json";
    const ALERTS: &str = "observability/prometheus-alerts.yml";

    /// The series a Prometheus histogram is exported as, besides its name.
    const HISTOGRAM_SUFFIXES: [&str; 3] = ["_bucket", "_sum", "_count"];

    fn read(path: &str) -> String {
        let path = crate::examples::workspace_root().join(path);
        fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
    }

    /// A Prometheus rule file, as much of it as these alerts may use: an
    /// unknown key (a typo such as `anotations`) fails the parse.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RuleFile {
        groups: Vec<RuleGroup>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RuleGroup {
        name: String,
        rules: Vec<AlertRule>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct AlertRule {
        alert: String,
        expr: String,
        #[serde(rename = "for")]
        pending_for: String,
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
    }

    fn alerts() -> RuleFile {
        serde_norway::from_str(&read(ALERTS)).unwrap_or_else(|error| panic!("{ALERTS}: {error}"))
    }

    fn dashboard() -> Value {
        serde_json::from_str(&read(DASHBOARD))
            .unwrap_or_else(|error| panic!("{DASHBOARD}: {error}"))
    }

    /// Every metric name `text` mentions: each identifier starting with
    /// `chatbase_` (a whole identifier, in Prometheus's alphabet, so that a
    /// misspelling is caught rather than cut short).
    fn metric_names(text: &str) -> Vec<&str> {
        let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
        let mut names = Vec::new();
        for (start, _) in text.match_indices("chatbase_") {
            if text[..start].chars().next_back().is_some_and(is_name_char) {
                continue;
            }
            let rest = &text[start..];
            let end = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
            names.push(&rest[..end]);
        }
        names
    }

    /// The metrics the crates emit: chatbase-core's and chatbase-inbox's lists.
    fn emitted() -> BTreeSet<&'static str> {
        observe::METRIC_NAMES
            .into_iter()
            .chain(chatbase_inbox::METRIC_NAMES)
            .collect()
    }

    /// The metric `series` belongs to: itself, or for a histogram's
    /// `_bucket`, `_sum` or `_count` series, the histogram. `None` if no crate
    /// emits it.
    fn metric_of(series: &str) -> Option<&'static str> {
        let emitted = emitted();
        if let Some(name) = emitted.get(series) {
            return Some(name);
        }
        HISTOGRAM_SUFFIXES.iter().find_map(|suffix| {
            let base = series.strip_suffix(suffix)?;
            (base == observe::VERIFICATION_SECONDS).then_some(observe::VERIFICATION_SECONDS)
        })
    }

    /// The values of the label `label` that `expr` matches on, with `=` or
    /// `=~` (each alternative of a regex such as `"rejected|unavailable"`).
    fn matched_values<'e>(expr: &'e str, label: &str) -> Vec<&'e str> {
        let mut values = Vec::new();
        for (start, _) in expr.match_indices(label) {
            let before = expr[..start].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let rest = expr[start + label.len()..].trim_start();
            let Some(rest) = rest.strip_prefix("=~").or_else(|| rest.strip_prefix('=')) else {
                continue;
            };
            let Some(quoted) = rest.trim_start().strip_prefix('"') else {
                continue;
            };
            let value = quoted.split('"').next().unwrap_or_default();
            values.extend(value.split('|'));
        }
        values
    }

    /// Checks one PromQL expression: it names at least one metric, every
    /// metric it names is emitted, and its `outcome` and `result` matchers
    /// use values the crates emit.
    fn check_expr(place: &str, expr: &str) -> Result<(), String> {
        let names = metric_names(expr);
        if names.is_empty() {
            return Err(format!("{place}: no chatbase metric in `{expr}`"));
        }
        for name in names {
            if metric_of(name).is_none() {
                return Err(format!(
                    "{place}: `{name}` is not a metric the crates emit (expression `{expr}`)"
                ));
            }
        }
        let outcomes = [
            Outcome::Accepted,
            Outcome::Rejected,
            Outcome::Duplicate,
            Outcome::Unavailable,
        ]
        .map(Outcome::as_str);
        for (label, known) in [
            ("outcome", &outcomes[..]),
            ("result", &["stored", "duplicate", "failed"][..]),
        ] {
            for value in matched_values(expr, label) {
                if !known.contains(&value) {
                    return Err(format!(
                        "{place}: {label}=\"{value}\" is never emitted (expression `{expr}`)"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every string in a JSON value, with where it is.
    fn strings<'v>(value: &'v Value, place: String, out: &mut Vec<(String, &'v str)>) {
        match value {
            Value::String(text) => out.push((place, text)),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    strings(item, format!("{place}[{i}]"), out);
                }
            }
            Value::Object(fields) => {
                for (key, item) in fields {
                    strings(item, format!("{place}.{key}"), out);
                }
            }
            _ => {}
        }
    }

    /// The dashboard's PromQL: every panel target's `expr`, and the queries
    /// of its template variables. (place, expression)
    fn dashboard_exprs(dashboard: &Value) -> Vec<(String, String)> {
        let mut exprs = Vec::new();
        for panel in dashboard["panels"].as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("?");
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"]
                    .as_str()
                    .unwrap_or_else(|| panic!("panel {title:?}: a target without expr"));
                exprs.push((format!("panel {title:?}"), expr.to_owned()));
            }
        }
        for variable in dashboard["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if variable["type"] == "query" {
                let name = variable["name"].as_str().unwrap_or("?");
                let query = variable["query"]["query"]
                    .as_str()
                    .or_else(|| variable["query"].as_str())
                    .unwrap_or_else(|| panic!("variable {name}: no query"));
                exprs.push((format!("variable {name}"), query.to_owned()));
            }
        }
        exprs
    }

    /// Whitespace collapsed, so that checks do not depend on layout.
    fn normalized(expr: &str) -> String {
        expr.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn metric_names_are_found_whole_and_histogram_series_map_to_their_histogram() {
        assert_eq!(
            metric_names(
                "sum by (le) (rate(chatbase_webhook_verification_duration_seconds_bucket{job=~\"$job\"}[5m])) \
                 / xchatbase_not_a_name + chatbase_Oops_total"
            ),
            [
                "chatbase_webhook_verification_duration_seconds_bucket",
                "chatbase_Oops_total"
            ]
        );
        assert_eq!(
            metric_of("chatbase_webhook_verification_duration_seconds_count"),
            Some(observe::VERIFICATION_SECONDS)
        );
        assert_eq!(
            metric_of("chatbase_inbox_dead_total"),
            Some("chatbase_inbox_dead_total")
        );
        // Only a histogram has these series, and only known names are known.
        assert_eq!(metric_of("chatbase_inbox_dead_total_bucket"), None);
        assert_eq!(metric_of("chatbase_webhook_requests"), None);
        assert_eq!(
            matched_values(
                r#"x{outcome=~"rejected|unavailable", result = "failed", xresult="no"}"#,
                "outcome"
            ),
            ["rejected", "unavailable"]
        );
        assert!(
            check_expr(
                "t",
                r#"rate(chatbase_inbox_accepted_total{result="lost"}[5m])"#
            )
            .is_err()
        );
        assert!(check_expr("t", "rate(chatbase_inbox_requeued_total[5m])").is_err());
        assert!(check_expr("t", "vector(1)").is_err());
    }

    #[test]
    fn the_dashboard_uses_only_emitted_metrics() {
        let dashboard = dashboard();
        let exprs = dashboard_exprs(&dashboard);
        assert!(exprs.len() >= 10, "{} expressions", exprs.len());
        let mut used = BTreeSet::new();
        for (place, expr) in &exprs {
            check_expr(place, expr).unwrap_or_else(|error| panic!("{DASHBOARD}: {error}"));
            used.extend(metric_names(expr).into_iter().filter_map(metric_of));
        }
        // Every metric the crates emit has its place on the dashboard.
        assert_eq!(used, emitted(), "{DASHBOARD}: metrics shown");
        // Names in descriptions and titles are real too.
        let mut texts = Vec::new();
        strings(&dashboard, String::new(), &mut texts);
        for (place, text) in texts {
            for name in metric_names(text) {
                assert!(metric_of(name).is_some(), "{DASHBOARD}{place}: {name}");
            }
        }
    }

    #[test]
    fn the_dashboard_has_its_panels_on_a_prometheus_data_source_variable() {
        let dashboard = dashboard();
        assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
        let variables = dashboard["templating"]["list"].as_array().unwrap();
        assert!(
            variables.iter().any(|v| v["name"] == "datasource"
                && v["type"] == "datasource"
                && v["query"] == "prometheus"),
            "no Prometheus data source variable"
        );
        let panels = dashboard["panels"].as_array().unwrap();
        let mut ids = BTreeSet::new();
        for panel in panels {
            let title = panel["title"].as_str().unwrap();
            assert!(ids.insert(panel["id"].as_u64().unwrap()), "{title}: id");
            assert!(panel["gridPos"]["w"].as_u64().is_some(), "{title}: gridPos");
            assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
            for target in panel["targets"].as_array().unwrap() {
                assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
            }
        }

        let exprs: Vec<(String, String)> = dashboard_exprs(&dashboard)
            .into_iter()
            .map(|(place, expr)| (place, normalized(&expr)))
            .collect();
        let panel_with = |what: &str, wanted: &[&str]| {
            assert!(
                exprs.iter().any(|(place, expr)| place.starts_with("panel")
                    && wanted.iter().all(|part| expr.contains(part))),
                "{DASHBOARD}: no panel for {what} (an expression with all of {wanted:?})"
            );
        };
        panel_with(
            "requests/s by outcome",
            &["by (outcome)", "rate(chatbase_webhook_requests_total"],
        );
        panel_with(
            "rejections by reason",
            &["reason", "rejected", "rate(chatbase_webhook_requests_total"],
        );
        panel_with(
            "events by type",
            &["by (event_type)", "rate(chatbase_webhook_events_total"],
        );
        for quantile in ["0.5", "0.99"] {
            panel_with(
                &format!("verification latency p{quantile}"),
                &[
                    &format!("histogram_quantile({quantile},"),
                    "by (le)",
                    "chatbase_webhook_verification_duration_seconds_bucket",
                ],
            );
        }
        panel_with(
            "time since the last accepted event",
            &[
                "time() -",
                "chatbase_webhook_last_accepted_timestamp_seconds",
            ],
        );
        panel_with("inbox pending", &["chatbase_inbox_pending"]);
        panel_with(
            "the oldest pending delivery's age",
            &["chatbase_inbox_oldest_pending_age_seconds"],
        );
        for counter in ["processed", "retries", "dead"] {
            panel_with(
                &format!("inbox {counter} rate"),
                &[&format!("rate(chatbase_inbox_{counter}_total")],
            );
        }
    }

    #[test]
    fn the_alerts_use_only_emitted_metrics() {
        let file = alerts();
        for rule in file.groups.iter().flat_map(|group| &group.rules) {
            check_expr(&rule.alert, &rule.expr).unwrap_or_else(|error| panic!("{ALERTS}: {error}"));
            for (key, text) in &rule.annotations {
                for name in metric_names(text) {
                    assert!(
                        metric_of(name).is_some(),
                        "{}: annotation {key}: {name}",
                        rule.alert
                    );
                }
            }
        }
        // Comments count too: they tell how to adjust the rules.
        for name in metric_names(&read(ALERTS)) {
            assert!(metric_of(name).is_some(), "{ALERTS}: {name}");
        }
    }

    #[test]
    fn the_alerts_cover_silence_dead_deliveries_and_an_old_backlog() {
        let file = alerts();
        assert!(!file.groups.is_empty());
        let rules: Vec<&AlertRule> = file.groups.iter().flat_map(|g| &g.rules).collect();
        let mut names = BTreeSet::new();
        for group in &file.groups {
            assert!(!group.name.is_empty());
        }
        for rule in &rules {
            assert!(names.insert(rule.alert.as_str()), "{}: twice", rule.alert);
            assert!(
                is_duration(&rule.pending_for),
                "{}: for: {:?}",
                rule.alert,
                rule.pending_for
            );
            assert!(
                matches!(
                    rule.labels.get("severity").map(String::as_str),
                    Some("critical" | "warning" | "info")
                ),
                "{}: severity",
                rule.alert
            );
            for key in ["summary", "description"] {
                assert!(
                    rule.annotations
                        .get(key)
                        .is_some_and(|text| text.len() > 20),
                    "{}: annotation {key}",
                    rule.alert
                );
            }
        }
        let alert_on = |what: &str, wanted: &[&str]| -> &AlertRule {
            rules
                .iter()
                .find(|rule| {
                    let expr = normalized(&rule.expr);
                    wanted.iter().all(|part| expr.contains(part))
                })
                .unwrap_or_else(|| {
                    panic!("{ALERTS}: no alert for {what} (an expression with all of {wanted:?})")
                })
        };
        // No accepted event for N hours while rejections rise.
        let silence = alert_on(
            "no accepted event while rejections rise",
            &[
                "time() -",
                "chatbase_webhook_last_accepted_timestamp_seconds",
                "3600",
                r#"rate(chatbase_webhook_requests_total{outcome="rejected"}"#,
                "> 0",
            ],
        );
        assert!(
            silence.annotations["description"].contains("signature_mismatch")
                && silence.annotations["description"].contains("proxy"),
            "the description says what to check"
        );
        alert_on("dead deliveries", &["chatbase_inbox_dead_total", "> 0"]);
        alert_on(
            "an old pending delivery",
            &["chatbase_inbox_oldest_pending_age_seconds", "> 15 * 60"],
        );
    }

    /// A Prometheus duration such as `15m`, `1h30m` or `0s`.
    fn is_duration(text: &str) -> bool {
        let mut digits = false;
        let mut rest = text;
        if rest.is_empty() {
            return false;
        }
        while !rest.is_empty() {
            let number = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            if number == 0 {
                return false;
            }
            digits = true;
            rest = &rest[number..];
            let Some(unit) = ["ms", "s", "m", "h", "d", "w", "y"]
                .into_iter()
                .find(|unit| rest.starts_with(unit))
            else {
                return false;
            };
            rest = &rest[unit.len()..];
        }
        digits
    }

    #[test]
    fn durations_are_recognized() {
        for good in ["15m", "1h30m", "0s", "500ms", "1d"] {
            assert!(is_duration(good), "{good}");
        }
        for bad in ["", "15", "m", "15 m", "1.5h", "15min"] {
            assert!(!is_duration(bad), "{bad}");
        }
    }
}
