//! vakt's request-tracker connector: being written.
