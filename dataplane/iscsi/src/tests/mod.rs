//! State-machine tests: an initiator-side helper builds PDUs byte by byte, feeds them to a
//! [`Connection`](crate::Connection), and decodes what it sends back.

mod commands;
mod data_stream;
mod digest;
mod discovery;
mod fuzz;
mod initiator;
mod login;
mod security;
mod session;
mod timers;
mod tmf;
