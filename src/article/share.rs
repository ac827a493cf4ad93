//! Share links, built on the server: plain links, no third-party script.

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

#[derive(Debug)]
pub struct ShareLink {
    /// A class name and the network's name.
    pub network: &'static str,
    pub label: &'static str,
    pub href: String,
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// Links that share `url` with its `title`.
pub fn share_links(url: &str, title: &str, email_label: &'static str) -> Vec<ShareLink> {
    let (u, t) = (enc(url), enc(title));
    vec![
        ShareLink {
            network: "email",
            label: email_label,
            href: format!("mailto:?subject={t}&body={u}"),
        },
        ShareLink {
            network: "x",
            label: "X",
            href: format!("https://x.com/intent/post?url={u}&text={t}"),
        },
        ShareLink {
            network: "facebook",
            label: "Facebook",
            href: format!("https://www.facebook.com/sharer/sharer.php?u={u}"),
        },
        ShareLink {
            network: "vk",
            label: "VK",
            href: format!("https://vk.com/share.php?url={u}&title={t}"),
        },
        ShareLink {
            network: "telegram",
            label: "Telegram",
            href: format!("https://t.me/share/url?url={u}&text={t}"),
        },
        ShareLink {
            network: "linkedin",
            label: "LinkedIn",
            href: format!("https://www.linkedin.com/sharing/share-offsite/?url={u}"),
        },
    ]
}
