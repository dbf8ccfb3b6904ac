//! A UDP datagram from anyone: framing (Content-Length, size limit,
//! keep-alives), parsing and normalisation, and the 400/505/513 owed to a
//! malformed request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trunkline_fuzz::{check_reply, exercise};
use trunkline_sip::message::{FrameLimits, parse_datagram};

fuzz_target!(|data: &[u8]| {
    let limits = FrameLimits {
        max_message_size: 4096,
    };
    match parse_datagram(data, &limits) {
        Ok(None) => assert!(
            data.iter().all(|b| matches!(b, b'\r' | b'\n')),
            "only CR/LF is a keep-alive"
        ),
        Ok(Some(msg)) => {
            assert!(data.len() <= limits.max_message_size);
            assert!(msg.body().len() <= data.len());
            exercise(&msg);
        }
        Err(malformed) => {
            if let Some(reply) = &malformed.reply {
                check_reply(reply, malformed.error.status());
            }
        }
    }
});
