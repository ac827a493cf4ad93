//! The page's own words in the article's language, with correct plurals.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Ru,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Ru => "ru",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "en" => Some(Self::En),
            "ru" => Some(Self::Ru),
            _ => None,
        }
    }

    pub fn labels(self) -> &'static Labels {
        match self {
            Self::En => &EN,
            Self::Ru => &RU,
        }
    }
}

/// Every label the page shows around an article.
#[derive(Debug)]
pub struct Labels {
    pub lang: Lang,
    pub print: &'static str,
    /// The link to this article in the *other* language, written in that language.
    pub read_in_this_language: &'static str,
    pub rate_this_article: &'static str,
    pub rate_submit: &'static str,
    pub your_rating: &'static str,
    pub average_rating: &'static str,
    pub no_votes: &'static str,
    pub share_this_article: &'static str,
    pub share_native: &'static str,
    pub copy_link: &'static str,
    pub link_copied: &'static str,
    pub share_by_email: &'static str,
    pub poll_conducted: &'static str,
    pub vote: &'static str,
    pub your_vote: &'static str,
    pub poll_closed: &'static str,
    pub poll_closes: &'static str,
    pub total: &'static str,
    pub author: &'static str,
    pub articles: &'static str,
    pub back_to_article: &'static str,
    pub skip_to_content: &'static str,
    pub printed_from: &'static str,
    pub published: &'static str,
    one: &'static str,
    few: &'static str,
    many: &'static str,
    star_one: &'static str,
    star_few: &'static str,
    star_many: &'static str,
    of_five: &'static str,
}

static EN: Labels = Labels {
    lang: Lang::En,
    print: "Print",
    read_in_this_language: "Read in English",
    rate_this_article: "Rate this article",
    rate_submit: "Rate",
    your_rating: "Your rating",
    average_rating: "Average rating",
    no_votes: "(no votes)",
    share_this_article: "Share this article",
    share_native: "Share…",
    copy_link: "Copy link",
    link_copied: "Link copied",
    share_by_email: "Email",
    poll_conducted: "Poll conducted",
    vote: "Vote",
    your_vote: "your vote",
    poll_closed: "This poll is closed.",
    poll_closes: "Voting closes",
    total: "Total",
    author: "Author",
    articles: "Articles",
    back_to_article: "Back to the article",
    skip_to_content: "Skip to the article",
    printed_from: "Printed from",
    published: "Published",
    one: "vote",
    few: "votes",
    many: "votes",
    star_one: "star",
    star_few: "stars",
    star_many: "stars",
    of_five: "of 5",
};

static RU: Labels = Labels {
    lang: Lang::Ru,
    print: "Печать",
    read_in_this_language: "Читать на русском",
    rate_this_article: "Оцените статью",
    rate_submit: "Оценить",
    your_rating: "Ваша оценка",
    average_rating: "Средняя оценка",
    no_votes: "(нет голосов)",
    share_this_article: "Поделиться статьёй",
    share_native: "Поделиться…",
    copy_link: "Копировать ссылку",
    link_copied: "Ссылка скопирована",
    share_by_email: "Эл. почта",
    poll_conducted: "Опрос проведён",
    vote: "Голосовать",
    your_vote: "ваш голос",
    poll_closed: "Опрос закрыт.",
    poll_closes: "Голосование закрывается",
    total: "Всего",
    author: "Автор",
    articles: "Статьи",
    back_to_article: "Вернуться к статье",
    skip_to_content: "Перейти к статье",
    printed_from: "Напечатано с",
    published: "Опубликовано",
    one: "голос",
    few: "голоса",
    many: "голосов",
    star_one: "звезда",
    star_few: "звезды",
    star_many: "звёзд",
    of_five: "из 5",
};

/// Which plural form a count takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plural {
    One,
    Few,
    Many,
}

pub fn plural(lang: Lang, n: u64) -> Plural {
    match lang {
        Lang::En if n == 1 => Plural::One,
        Lang::En => Plural::Many,
        Lang::Ru => match (n % 10, n % 100) {
            (1, r) if r != 11 => Plural::One,
            (2..=4, r) if !(12..=14).contains(&r) => Plural::Few,
            _ => Plural::Many,
        },
    }
}

impl Labels {
    /// "1 vote", "21 votes"; "1 голос", "3 голоса", "5 голосов".
    pub fn votes(&self, n: u64) -> String {
        let word = match plural(self.lang, n) {
            Plural::One => self.one,
            Plural::Few => self.few,
            Plural::Many => self.many,
        };
        format!("{n} {word}")
    }

    /// "(no votes)" or "(3 votes)".
    pub fn votes_in_parens(&self, n: u64) -> String {
        if n == 0 {
            self.no_votes.to_owned()
        } else {
            format!("({})", self.votes(n))
        }
    }

    /// The words for counts, for the page's script: `{"one","few","many","none"}`.
    pub fn plural_forms_json(&self) -> String {
        serde_json::json!({ "one": self.one, "few": self.few, "many": self.many, "none": self.no_votes }).to_string()
    }

    /// "4 stars of 5", as a screen reader reads a star's label.
    pub fn stars_of_five(&self, n: u8) -> String {
        let word = match plural(self.lang, u64::from(n)) {
            Plural::One => self.star_one,
            Plural::Few => self.star_few,
            Plural::Many => self.star_many,
        };
        format!("{n} {word} {}", self.of_five)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn russian_plurals() {
        let ru = Lang::Ru.labels();
        for (n, text) in [
            (1, "1 голос"),
            (2, "2 голоса"),
            (3, "3 голоса"),
            (4, "4 голоса"),
            (5, "5 голосов"),
            (11, "11 голосов"),
            (12, "12 голосов"),
            (21, "21 голос"),
            (22, "22 голоса"),
            (111, "111 голосов"),
            (0, "0 голосов"),
        ] {
            assert_eq!(ru.votes(n), text);
        }
        assert_eq!(ru.stars_of_five(1), "1 звезда из 5");
        assert_eq!(ru.stars_of_five(4), "4 звезды из 5");
        assert_eq!(ru.stars_of_five(5), "5 звёзд из 5");
    }

    #[test]
    fn english_plurals() {
        let en = Lang::En.labels();
        assert_eq!(en.votes(1), "1 vote");
        assert_eq!(en.votes(21), "21 votes");
        assert_eq!(en.votes_in_parens(0), "(no votes)");
        assert_eq!(en.stars_of_five(1), "1 star of 5");
        assert_eq!(en.stars_of_five(4), "4 stars of 5");
    }
}
