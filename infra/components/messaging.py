"""Pub/Sub: one topic per hop, and the push deliveries that must not lose a message (pitfall 3): the program's
own push subscription to the function's HTTP endpoint, with an OIDC token, a retry policy and a dead-letter
topic whose messages are held by a pull subscription where an operator can see and replay them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pulumi
import pulumi_gcp as gcp

from infra.components.base import Component
from infra.declaration import PubSubTrigger

DAY_SECONDS = 24 * 3600
DEAD_LETTER_RETENTION = f"{31 * DAY_SECONDS}s"  # the longest Pub/Sub keeps a message


class Messaging(Component):
    """The topics, by name, and the Pub/Sub service agent (it forwards dead letters)."""

    def __init__(
        self,
        name: str,
        topics: Iterable[str],
        project: str,
        deps: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("Messaging", name, deps, opts)
        self.topics = {
            topic: gcp.pubsub.Topic(
                f"topic-{topic}", name=topic, message_retention_duration=f"{DAY_SECONDS}s", opts=self.child()
            )
            for topic in sorted(set(topics))
        }
        # Created on first use otherwise; it must exist before it can be granted anything.
        self.agent = gcp.projects.ServiceIdentity(
            "pubsub-agent", project=project, service="pubsub.googleapis.com", opts=self.child()
        )
        self.register_outputs({"topics": {k: v.id for k, v in self.topics.items()}})


class PushDelivery(Component):
    """The step's subscription on `topic` (named by its trigger), pushed to `endpoint` with an OIDC token of
    `identity`, with its dead-letter topic and the subscription that holds the dead letters."""

    def __init__(
        self,
        step: str,
        *,
        topic: gcp.pubsub.Topic,
        endpoint: pulumi.Input[str],
        trigger: PubSubTrigger,
        identity: gcp.serviceaccount.Account,
        agent: gcp.projects.ServiceIdentity,
        deps: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        name = trigger.subscription(step)
        super().__init__("PushDelivery", name, deps, opts)
        self.dead_letter_topic = gcp.pubsub.Topic(
            f"{name}-dead-letter",
            name=trigger.dead_letter_topic(step),
            message_retention_duration=DEAD_LETTER_RETENTION,
            opts=self.child(),
        )
        # Messages published to a topic without a subscription are dropped: this one holds the dead letters.
        self.dead_letter_hold = gcp.pubsub.Subscription(
            f"{name}-dead-letter-hold",
            name=trigger.dead_letter_hold(step),
            topic=self.dead_letter_topic.id,
            ack_deadline_seconds=600,
            message_retention_duration=DEAD_LETTER_RETENTION,
            expiration_policy=gcp.pubsub.SubscriptionExpirationPolicyArgs(ttl=""),
            opts=self.child(),
        )
        agent_member = agent.member
        publish_dead_letters = gcp.pubsub.TopicIAMMember(
            f"{name}-dead-letter-publisher",
            topic=self.dead_letter_topic.name,
            role="roles/pubsub.publisher",
            member=agent_member,
            opts=self.child(),
        )
        # Pub/Sub mints the OIDC token of the push identity (needed in projects older than April 2021).
        mint_tokens = gcp.serviceaccount.IAMMember(
            f"{name}-push-token-creator",
            service_account_id=identity.name,
            role="roles/iam.serviceAccountTokenCreator",
            member=agent_member,
            opts=self.child(),
        )
        self.subscription = gcp.pubsub.Subscription(
            name,
            name=name,
            topic=topic.id,
            ack_deadline_seconds=trigger.ack_deadline_seconds,
            message_retention_duration=f"{trigger.retention_days * DAY_SECONDS}s",
            expiration_policy=gcp.pubsub.SubscriptionExpirationPolicyArgs(ttl=""),
            push_config=gcp.pubsub.SubscriptionPushConfigArgs(
                push_endpoint=endpoint,
                oidc_token=gcp.pubsub.SubscriptionPushConfigOidcTokenArgs(
                    service_account_email=identity.email, audience=endpoint
                ),
            ),
            dead_letter_policy=gcp.pubsub.SubscriptionDeadLetterPolicyArgs(
                dead_letter_topic=self.dead_letter_topic.id,
                max_delivery_attempts=trigger.max_delivery_attempts,
            ),
            retry_policy=gcp.pubsub.SubscriptionRetryPolicyArgs(
                minimum_backoff=f"{trigger.min_backoff_seconds}s",
                maximum_backoff=f"{trigger.max_backoff_seconds}s",
            ),
            opts=self.child(publish_dead_letters, mint_tokens, self.dead_letter_hold),
        )
        gcp.pubsub.SubscriptionIAMMember(
            f"{name}-dead-letter-subscriber",
            subscription=self.subscription.name,
            role="roles/pubsub.subscriber",
            member=agent_member,
            opts=self.child(),
        )
        self.register_outputs({"subscription": self.subscription.id, "dead_letter_topic": self.dead_letter_topic.id})
