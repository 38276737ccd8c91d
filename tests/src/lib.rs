//! Integration and end-to-end tests live under tests/.
