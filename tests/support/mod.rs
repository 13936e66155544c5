pub mod cli;
pub mod lab;
pub mod sshd;
