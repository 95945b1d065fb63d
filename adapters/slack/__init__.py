"""The Slack surface: review cards in Block Kit, posted and updated with slack_sdk."""
