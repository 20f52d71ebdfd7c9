"""Collection: polls turn query results into series, cursor totals and state, on a schedule."""
