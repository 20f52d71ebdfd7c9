"""The spec: YAML files loaded with line numbers, ${VAR} substituted, validated by pydantic."""
