//! One-line rendering of an error and its sources, for logs and command-line output.
//!
//! Many errors repeat their source in their own message, and some (tonic's transport error)
//! say nothing but "transport error" until their sources are read. [`render`] walks the chain
//! and appends each source only when the text so far does not already contain it.

use std::error::Error;
use std::fmt;

/// Renders an error with every source not already part of the text, joined by ": ".
pub fn render(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !message.is_empty() && !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

/// Displays an error with its sources through [`render`], for `tracing` fields.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer {
        message: &'static str,
        source: Option<Box<Layer>>,
    }

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.message)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.source
                .as_deref()
                .map(|layer| layer as &(dyn Error + 'static))
        }
    }

    #[test]
    fn repeated_sources_are_written_once() {
        let error = Layer {
            message: "cannot read config.toml: No such file",
            source: Some(Box::new(Layer {
                message: "No such file",
                source: None,
            })),
        };
        assert_eq!(render(&error), "cannot read config.toml: No such file");
    }

    #[test]
    fn silent_layers_gain_their_sources() {
        let error = Layer {
            message: "transport error",
            source: Some(Box::new(Layer {
                message: "transport error",
                source: Some(Box::new(Layer {
                    message: "tcp connect error: Connection refused",
                    source: None,
                })),
            })),
        };
        assert_eq!(
            render(&error),
            "transport error: tcp connect error: Connection refused"
        );
    }
}
