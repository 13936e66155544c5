pub mod lab;
pub mod cli;
pub mod sshd;
