"""The example study a new study copies (see docs/architecture.md, "Adding a study")."""
