//! vakt's scim connector: being written.
