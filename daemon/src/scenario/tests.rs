//! Unit tests of the scenario runner.
