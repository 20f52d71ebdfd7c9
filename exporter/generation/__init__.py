"""Generation, apart from the runtime: rules, promtool tests, dashboards, reports from the spec."""
