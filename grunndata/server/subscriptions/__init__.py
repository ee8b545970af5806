"""R5 topic-based subscriptions: the topics and what a release tells each subscriber (topics.py)."""
