//! vakt's redmine connector: being written.
