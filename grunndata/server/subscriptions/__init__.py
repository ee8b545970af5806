"""R5 topic-based subscriptions: the topics, the notifications and how they are sent."""
