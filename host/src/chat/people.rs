//! The REST calls behind access requests: the system admins, a direct channel with one person,
//! and the plugin's grant route (the plugin owns its settings, so only it can add someone to
//! Allowed users). Called as the bot, like every other call of [`MattermostClient`].

use reqwest::Method;
use serde_json::Value;

use super::mattermost::UserWire;
use super::{ChatError, MattermostClient};
use crate::protocol::{AccessGrant, AccessGranted, User};

/// More system admins than this are not asked (the first page is).
const MAX_ADMINS: usize = 200;

impl MattermostClient {
    /// The active system admins, bots left out.
    pub async fn system_admins(&self) -> Result<Vec<User>, ChatError> {
        let path = format!("/users?role=system_admin&active=true&per_page={MAX_ADMINS}");
        let users: Vec<UserWire> = self
            .json(Method::GET, &path, "listing the system admins", |r| r)
            .await?;
        Ok(users
            .into_iter()
            .map(UserWire::into_user)
            .filter(|u| !u.is_bot)
            .collect())
    }

    /// The id of the bot's direct channel with `user_id`, created when there is none yet.
    pub async fn direct_channel(&self, user_id: &str) -> Result<String, ChatError> {
        let bot = self.target().ok_or(ChatError::NotConfigured)?.bot_user_id;
        let channel: Value = self
            .json(
                Method::POST,
                "/channels/direct",
                "opening a direct channel",
                |r| r.json(&[&bot, user_id]),
            )
            .await?;
        Ok(channel["id"].as_str().unwrap_or_default().to_string())
    }

    /// Asks the plugin at `route` (`/plugins/<id>/v1/access/grant`) to add a user to Allowed users.
    pub async fn grant_access(
        &self,
        route: &str,
        grant: &AccessGrant,
    ) -> Result<AccessGranted, ChatError> {
        self.json(Method::POST, route, "adding a user to Allowed users", |r| {
            r.json(grant)
        })
        .await
    }
}
