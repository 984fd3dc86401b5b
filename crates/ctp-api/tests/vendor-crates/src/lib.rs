//! Empty: this package only names the crates the ctp-api tests fetch.
