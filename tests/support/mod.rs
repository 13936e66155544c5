pub mod cli;
pub mod journal;
pub mod lab;
pub mod sshd;
