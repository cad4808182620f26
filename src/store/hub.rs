//! The WebSub hub's subscriptions (`hs/{topic}\0{callback}`, see [`super::keys`]): who
//! receives which of tributary's own feeds, until when, with which secret. Written when a
//! subscriber has confirmed its intent, removed on a confirmed unsubscribe, an expired
//! lease, a 410 or repeated failed deliveries (the hub decides; this file only keeps them).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::keys::{self, decode, encode};
use super::{Store, StoreError};

/// One active subscription to a topic (a published feed URL).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct HubSubscription {
    pub topic: String,
    pub callback: String,
    /// `hub.secret`: deliveries carry `X-Hub-Signature` made with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// When the lease ends.
    pub expires: DateTime<Utc>,
    /// Failed deliveries in a row, and when the first of them was.
    #[serde(default)]
    pub failures: u32,
    #[serde(default)]
    pub failing_since: Option<DateTime<Utc>>,
}

impl Store {
    /// Every stored subscription (expired ones included: the hub drops them).
    pub fn hub_subscriptions(&self) -> Result<Vec<HubSubscription>, StoreError> {
        self.reading(|| self.scan_decoded(keys::HUB))
    }

    /// The subscription of `callback` to `topic`, if there is one.
    pub fn hub_get(
        &self,
        topic: &str,
        callback: &str,
    ) -> Result<Option<HubSubscription>, StoreError> {
        let key = keys::hub(topic, callback);
        self.reading(|| match self.db()?.get(&key)? {
            Some(v) => Ok(Some(decode(&key, &v)?)),
            None => Ok(None),
        })
    }

    /// Adds or replaces the subscription of `sub.callback` to `sub.topic` (flushed: a
    /// confirmed subscription outlives a crash).
    pub fn hub_put(&self, sub: &HubSubscription) -> Result<(), StoreError> {
        self.writing(|| {
            let db = self.db()?;
            db.insert(keys::hub(&sub.topic, &sub.callback), encode(sub))?;
            db.flush()?;
            Ok(())
        })
    }

    /// Removes the subscription of `callback` to `topic`; whether there was one.
    pub fn hub_remove(&self, topic: &str, callback: &str) -> Result<bool, StoreError> {
        self.writing(|| {
            let db = self.db()?;
            let had = db.remove(keys::hub(topic, callback))?.is_some();
            db.flush()?;
            Ok(had)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_are_kept_replaced_and_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 1 << 20).expect("store");
        let sub = HubSubscription {
            topic: "http://feeds.test/feed.atom".into(),
            callback: "http://reader.test/cb?x=1".into(),
            secret: Some("s".into()),
            expires: Utc::now(),
            failures: 0,
            failing_since: None,
        };
        store.hub_put(&sub).expect("put");
        let other = HubSubscription {
            topic: "http://feeds.test/feed.rss".into(),
            ..sub.clone()
        };
        store.hub_put(&other).expect("put");
        let again = HubSubscription {
            failures: 2,
            ..sub.clone()
        };
        store.hub_put(&again).expect("replace");
        let mut all = store.hub_subscriptions().expect("read");
        all.sort_by(|a, b| a.topic.cmp(&b.topic));
        assert_eq!(all, [again, other.clone()]);
        assert!(store.hub_remove(&sub.topic, &sub.callback).expect("remove"));
        assert!(!store.hub_remove(&sub.topic, &sub.callback).expect("gone"));
        assert_eq!(store.hub_subscriptions().expect("read"), [other]);
    }
}
