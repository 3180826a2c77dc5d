"""Which errors a real Apache Kafka broker answers each group-coordination API with.

The fault engine lets a rule inject any Kafka error on any API. Some of those combinations are
ones no broker ever produces (COORDINATOR_LOAD_IN_PROGRESS on Heartbeat: while its partition
loads, the coordinator answers heartbeats with NONE). A client that mishandles such an error
has a robustness problem, not a race a user can hit in production; this module says which is
which, so that the admin API, the CLI and the event log can flag them.

Where the facts come from: Apache Kafka's own broker code, read at commit
1eb7644349cb07139d6a3c1ad1986979647cac99 (2024-10-25, 4.0.0-SNAPSHOT), the commit the codec's
message specs come from (``../shared/kafka-message-specs``). Both group coordinators of that
commit were read: the new one (``group-coordinator/``, the only one from Kafka 4.0 on, and
behind ``group.coordinator.new.enable`` in 3.x) and the old one
(``core/.../kafka/coordinator/group/``, the default before 4.0), with ``KafkaApis.scala`` in
front of both. An error either of them answers with counts as one a real broker returns; an
entry's ``when`` says when only one of them does. Every entry names the file and symbol it was
read from (``SOURCE_PATHS`` maps each file to its path in the Kafka repository).

What it holds:

* ``BROKER_ERRORS``   API name -> the errors a broker answers it with (`BrokerError` entries:
                      error name, first and last version, when, source)
* ``KNOWN_VERSIONS``  API name -> the versions the entries were read for; a version outside
                      is not judged (a newer broker may do more there)
* ``INSTEAD``         (API, error) -> what a broker does where a user might expect that error
* ``broker_returns``, ``why_not``, ``why_not_at``: the questions asked of the table
* ``table_rows``, ``markdown_table``: the table for ``docs/broker-errors.md``
  (``python -m kafka_chaos_proxy.faults.broker_errors docs/broker-errors.md`` rewrites it there)

Pure data and functions; imports ``codec`` and the standard library only. Anything in
``faults`` and above may import it (``faults.realism`` turns it into rule warnings).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import NamedTuple

from kafka_chaos_proxy import codec

KAFKA_COMMIT = "1eb7644349cb07139d6a3c1ad1986979647cac99"
KAFKA_VERSION = "4.0.0-SNAPSHOT (2024-10-25)"

_GC = "group-coordinator/src/main/java/org/apache/kafka/coordinator/group/"
_CC = "coordinator-common/src/main/java/org/apache/kafka/coordinator/common/runtime/"
_CORE = "core/src/main/scala/kafka/"
_REQ = "clients/src/main/java/org/apache/kafka/common/requests/"

# The file part of every `source` below -> its path in apache/kafka at KAFKA_COMMIT.
SOURCE_PATHS: dict[str, str] = {
    "KafkaApis.scala": _CORE + "server/KafkaApis.scala",
    "AddPartitionsToTxnManager.scala": _CORE + "server/AddPartitionsToTxnManager.scala",
    "GroupCoordinator.scala": _CORE + "coordinator/group/GroupCoordinator.scala",
    "GroupCoordinatorAdapter.scala": _CORE + "coordinator/group/GroupCoordinatorAdapter.scala",
    "GroupMetadataManager.scala": _CORE + "coordinator/group/GroupMetadataManager.scala",
    "CoordinatorPartitionWriter.scala": (
        _CORE + "coordinator/group/CoordinatorPartitionWriter.scala"
    ),
    "GroupCoordinatorService.java": _GC + "GroupCoordinatorService.java",
    "GroupMetadataManager.java": _GC + "GroupMetadataManager.java",
    "OffsetMetadataManager.java": _GC + "OffsetMetadataManager.java",
    "ClassicGroup.java": _GC + "classic/ClassicGroup.java",
    "ConsumerGroup.java": _GC + "modern/consumer/ConsumerGroup.java",
    "CoordinatorOperationExceptionHelper.java": _CC + "CoordinatorOperationExceptionHelper.java",
    "CoordinatorRuntime.java": _CC + "CoordinatorRuntime.java",
    "ProducerAppendInfo.java": "storage/src/main/java/org/apache/kafka/storage/internals/log/"
    "ProducerAppendInfo.java",
    "JoinGroupRequest.java": _REQ + "JoinGroupRequest.java",
    "SyncGroupRequest.java": _REQ + "SyncGroupRequest.java",
    "LeaveGroupResponse.java": _REQ + "LeaveGroupResponse.java",
    "OffsetFetchResponse.java": _REQ + "OffsetFetchResponse.java",
    "FindCoordinatorRequest.java": _REQ + "FindCoordinatorRequest.java",
}


class BrokerError(NamedTuple):
    """One error a broker answers an API with, from `min_version` to `max_version` (None: the
    last version read), `when` it does (empty: the usual meaning of the error), and where in
    Kafka's code it was read (``File#symbol``, several separated by ``; ``)."""

    error: str
    min_version: int
    max_version: int | None
    when: str
    source: str


OLD = "old coordinator only (the default before Kafka 4.0)"
NEW = "new coordinator only (the only one from Kafka 4.0)"
STATIC = "static members only, with group.instance.id"


def _e(error: str, source: str, when: str = "", since: int = 0,
       until: int | None = None) -> BrokerError:
    return BrokerError(error, since, until, when, source)


# ------------------------------------------------------------------------ shared entries

_RUNTIME = "CoordinatorRuntime.java#withActiveContextOrThrow"
_HANDLE = "CoordinatorOperationExceptionHelper.java#handleOperationException"
_STATUS = "GroupCoordinator.scala#validateGroupStatus"


def _not_available(service: str) -> BrokerError:
    return _e("COORDINATOR_NOT_AVAILABLE",
              f"GroupCoordinatorService.java#{service}; {_HANDLE}; {_STATUS}",
              "coordinator not started or shutting down, group being unloaded (Dead), or the "
              "write to __consumer_offsets failed or timed out")


def _not_coordinator() -> BrokerError:
    return _e("NOT_COORDINATOR", f"{_RUNTIME}; {_HANDLE}; {_STATUS}",
              "this broker does not (or no longer) lead the group's __consumer_offsets partition")


def _loading(when: str = "", since: int = 0) -> BrokerError:
    return _e("COORDINATOR_LOAD_IN_PROGRESS", f"{_RUNTIME}; {_STATUS}",
              when or "the group's __consumer_offsets partition is still being loaded", since)


def _authz(handler: str, when: str = "an authorizer denies READ on the group") -> BrokerError:
    return _e("GROUP_AUTHORIZATION_FAILED", f"KafkaApis.scala#{handler}", when)


_SERVER_ERROR = _e("UNKNOWN_SERVER_ERROR", f"{_HANDLE}; KafkaApis.scala#handle",
                   "an unexpected exception, or a __consumer_offsets write too large")
_EMPTY_GROUP = "the group id is empty"


def _classic(service: str, handler: str, loading: bool = True,
             loading_when: str = "") -> tuple[BrokerError, ...]:
    """The errors every classic-protocol group API gets, whatever the group's state."""
    out = [
        _authz(handler),
        _e("INVALID_GROUP_ID", f"GroupCoordinatorService.java#{service}; {_STATUS}",
           _EMPTY_GROUP),
        _not_available(service),
        _not_coordinator(),
    ]
    if loading:
        out.append(_loading(loading_when))
    out.append(_SERVER_ERROR)
    return tuple(out)


def _static_ibp(handler: str, since: int) -> BrokerError:
    return _e("UNSUPPORTED_VERSION", f"KafkaApis.scala#{handler}",
              "static member on a cluster whose inter.broker.protocol.version is below 2.3 "
              "(ZooKeeper mode only)", since)


def _fenced_instance(since: int, source: str) -> BrokerError:
    return _e("FENCED_INSTANCE_ID", source,
              f"{STATIC}: another member id holds the instance id", since)


_MEMBER_CHECK = "ClassicGroup.java#validateMember; GroupCoordinator.scala#validateCurrentMember"

# ------------------------------------------------------------------------ the table

BROKER_ERRORS: dict[str, tuple[BrokerError, ...]] = {
    "JoinGroup": (
        _e("UNKNOWN_MEMBER_ID",
           f"GroupMetadataManager.java#classicGroupJoinToClassicGroup; {_MEMBER_CHECK}; "
           "GroupCoordinator.scala#handleJoinGroup",
           "a member id the group does not know (or no such group), or the group went Empty"),
        _e("MEMBER_ID_REQUIRED",
           "JoinGroupRequest.java#requiresKnownMemberId; "
           "GroupMetadataManager.java#classicGroupJoinNewDynamicMember; "
           "GroupCoordinatorAdapter.scala#joinGroup",
           "first join of a dynamic member (no group.instance.id) with an empty member id", 4),
        _e("FENCED_INSTANCE_ID",
           f"{_MEMBER_CHECK}; ClassicGroup.java#replaceStaticMember",
           f"{STATIC}: another member id holds the instance id, or a newer instance replaced "
           "this one while its join was pending", 5),
        _e("INCONSISTENT_GROUP_PROTOCOL",
           "GroupMetadataManager.java#classicGroupJoinNewMember; "
           "GroupMetadataManager.java#classicGroupJoin; "
           "GroupCoordinator.scala#doNewMemberJoinGroup",
           "protocol type or names unlike the group's, or the group id is a share group's"),
        _e("INVALID_SESSION_TIMEOUT",
           "GroupCoordinatorService.java#joinGroup; GroupCoordinator.scala#handleJoinGroup",
           "session timeout outside group.min/max.session.timeout.ms"),
        _e("GROUP_MAX_SIZE_REACHED",
           "GroupMetadataManager.java#classicGroupJoinToClassicGroup; "
           "GroupMetadataManager.java#throwIfConsumerGroupIsFull; "
           "GroupCoordinator.scala#handleJoinGroup",
           "the group is full (group.max.size, or group.consumer.max.size)"),
        _e("REBALANCE_IN_PROGRESS", "GroupMetadataManager.java#convertToConsumerGroup",
           f"{NEW}: a pending join is cut short while a classic group is converted to a "
           "consumer (KIP-848) group"),
        _static_ibp("handleJoinGroupRequest", 5),
        *_classic("joinGroup", "handleJoinGroupRequest"),
    ),
    "SyncGroup": (
        _e("UNKNOWN_MEMBER_ID",
           f"GroupMetadataManager.java#classicGroupSync; {_MEMBER_CHECK}; "
           "GroupCoordinator.scala#handleSyncGroup",
           "a member id the group does not know, no such group, or the group is empty"),
        _e("ILLEGAL_GENERATION",
           "GroupMetadataManager.java#validateSyncGroup; "
           "GroupMetadataManager.java#throwIfGenerationIdUnmatched; "
           "GroupCoordinator.scala#validateSyncGroup",
           "the generation id is not the group's"),
        _e("REBALANCE_IN_PROGRESS",
           "GroupMetadataManager.java#classicGroupSyncToClassicGroup; "
           "GroupMetadataManager.java#prepareRebalance; "
           "GroupMetadataManager.java#throwIfRebalanceInProgress; "
           "GroupCoordinator.scala#handleSyncGroup; GroupMetadataManager.scala#storeGroup",
           "the group is PreparingRebalance or a new rebalance cut the sync short; the old "
           "coordinator also while loading and when the assignment write times out"),
        _fenced_instance(3, _MEMBER_CHECK),
        _e("INCONSISTENT_GROUP_PROTOCOL",
           "KafkaApis.scala#handleSyncGroupRequest; "
           "SyncGroupRequest.java#areMandatoryProtocolTypeAndNamePresent; "
           "GroupMetadataManager.java#validateSyncGroup",
           "protocol type or name missing (mandatory from v5) or not the group's", 5),
        _static_ibp("handleSyncGroupRequest", 3),
        *_classic("syncGroup", "handleSyncGroupRequest",
                  loading_when=f"{NEW}; the old coordinator answers REBALANCE_IN_PROGRESS"),
    ),
    "Heartbeat": (
        _e("UNKNOWN_MEMBER_ID",
           "GroupMetadataManager.java#classicGroupHeartbeat; "
           f"GroupMetadataManager.java#classicGroupHeartbeatToClassicGroup; {_MEMBER_CHECK}; "
           "GroupCoordinator.scala#handleHeartbeat",
           "a member id the group does not know, no such group, or the group is Empty"),
        _e("ILLEGAL_GENERATION",
           "GroupMetadataManager.java#validateClassicGroupHeartbeat; "
           "GroupCoordinator.scala#validateHeartbeat",
           "the generation id is not the group's"),
        _e("REBALANCE_IN_PROGRESS",
           "GroupMetadataManager.java#classicGroupHeartbeatToClassicGroup; "
           "GroupMetadataManager.java#classicGroupHeartbeatToConsumerGroup; "
           "GroupCoordinator.scala#handleHeartbeat",
           "the group is PreparingRebalance (or, in a consumer group, the classic member must "
           "rejoin)"),
        _fenced_instance(3, _MEMBER_CHECK),
        _static_ibp("handleHeartbeatRequest", 3),
        *_classic("heartbeat", "handleHeartbeatRequest", loading=False),
    ),
    "LeaveGroup": (
        _e("UNKNOWN_MEMBER_ID",
           "GroupMetadataManager.java#classicGroupLeaveToClassicGroup; "
           "GroupCoordinatorService.java#leaveGroup; LeaveGroupResponse.java#LeaveGroupResponse; "
           "GroupCoordinator.scala#handleLeaveGroup",
           "the member (or the group) is unknown; per member from v3, top level in v0-2"),
        _fenced_instance(3, f"{_MEMBER_CHECK}; "
                            "GroupMetadataManager.java#throwIfInstanceIdIsFenced"),
        *_classic("leaveGroup", "handleLeaveGroupRequest"),
    ),
    "OffsetCommit": (
        _authz("handleOffsetCommitRequest"),
        _e("TOPIC_AUTHORIZATION_FAILED", "KafkaApis.scala#handleOffsetCommitRequest",
           "per partition: an authorizer denies READ on the topic"),
        _e("UNKNOWN_TOPIC_OR_PARTITION", "KafkaApis.scala#handleOffsetCommitRequest",
           "per partition: the topic or partition is not in the broker's metadata"),
        _e("OFFSET_METADATA_TOO_LARGE",
           "OffsetMetadataManager.java#commitOffset; GroupMetadataManager.scala#storeOffsets; "
           "KafkaApis.scala#commitOffsetsToZookeeper",
           "per partition: metadata longer than offset.metadata.max.bytes"),
        _e("UNSUPPORTED_VERSION", "KafkaApis.scala#commitOffsetsToZookeeper",
           "a KRaft broker (v0 commits go to ZooKeeper)", 0, 0),
        _e("UNSUPPORTED_VERSION", "ConsumerGroup.java#validateOffsetCommit",
           f"{NEW}: a member of a consumer-protocol (KIP-848) group must use v9+", 1, 8),
        _static_ibp("handleOffsetCommitRequest", 7),
        _SERVER_ERROR,
        # From v1 offsets go to the group coordinator (v0 to ZooKeeper, past every group check).
        _not_available("commitOffsets")._replace(min_version=1),
        _not_coordinator()._replace(min_version=1),
        _loading(since=1),
        _e("UNKNOWN_MEMBER_ID",
           f"{_MEMBER_CHECK}; ClassicGroup.java#validateOffsetCommit; "
           "ConsumerGroup.java#validateOffsetCommit; GroupCoordinator.scala#validateOffsetCommit",
           "a member id the group does not know, or no member id while the group is not empty",
           1),
        _e("ILLEGAL_GENERATION",
           "ClassicGroup.java#validateOffsetCommit; "
           "OffsetMetadataManager.java#validateOffsetCommit; "
           "GroupCoordinator.scala#handleCommitOffsets",
           "the generation id is not the group's; before v9 also when the group does not exist",
           1),
        _e("REBALANCE_IN_PROGRESS",
           "ClassicGroup.java#validateOffsetCommit; GroupCoordinator.scala#doCommitOffsets",
           "a classic group in CompletingRebalance (between JoinGroup and SyncGroup)", 1),
        _fenced_instance(7, f"{_MEMBER_CHECK}; ClassicGroup.java#validateOffsetCommit"),
        _e("GROUP_ID_NOT_FOUND", "OffsetMetadataManager.java#validateOffsetCommit",
           f"{NEW}: the group does not exist and a generation was given (v0-8 get "
           "ILLEGAL_GENERATION)", 9),
        _e("STALE_MEMBER_EPOCH", "ConsumerGroup.java#validateMemberEpoch",
           f"{NEW}: a consumer-protocol member commits with an epoch that is not its own", 9),
        _e("INVALID_COMMIT_OFFSET_SIZE", "GroupMetadataManager.scala#maybeConvertOffsetCommitError",
           f"{OLD}: the offsets are too large to append", 1),
        _e("REQUEST_TIMED_OUT",
           "GroupMetadataManager.scala#storeOffsets; "
           "GroupMetadataManager.scala#maybeConvertOffsetCommitError",
           f"{OLD}: the append times out (offsets.commit.timeout.ms); the new one answers "
           "COORDINATOR_NOT_AVAILABLE", 1),
    ),
    "OffsetFetch": (
        _authz("handleOffsetFetchRequestFromCoordinator",
               "an authorizer denies DESCRIBE on the group"),
        _e("TOPIC_AUTHORIZATION_FAILED", "KafkaApis.scala#fetchOffsetsForGroup",
           "per partition: an authorizer denies DESCRIBE on the topic"),
        _e("UNKNOWN_TOPIC_OR_PARTITION", "KafkaApis.scala#handleOffsetFetchRequestFromZookeeper",
           "per partition, v0 only (offsets read from ZooKeeper)", 0, 0),
        _e("UNSUPPORTED_VERSION", "KafkaApis.scala#handleOffsetFetchRequestFromZookeeper",
           "a KRaft broker (v0 reads offsets from ZooKeeper)", 0, 0),
        _SERVER_ERROR,
        _e("COORDINATOR_NOT_AVAILABLE",
           f"GroupCoordinatorService.java#fetchOffsets; {_STATUS}; "
           "OffsetFetchResponse.java#OffsetFetchResponse",
           "coordinator not started; per group from v2, per partition in v1", 1),
        _e("NOT_COORDINATOR",
           f"{_RUNTIME}; GroupCoordinatorService.java#handleOffsetFetchException; {_STATUS}",
           "this broker does not lead the group's partition, or a require_stable fetch timed "
           "out", 1),
        _loading(since=1),
        _e("UNSTABLE_OFFSET_COMMIT",
           "OffsetMetadataManager.java#fetchOffsets; GroupMetadataManager.scala#getOffsets",
           "per partition: require_stable and a transactional commit is pending", 7),
        _e("UNKNOWN_MEMBER_ID", "ConsumerGroup.java#validateOffsetFetch",
           f"{NEW}: a member id (v9+) the consumer group does not know", 9),
        _e("STALE_MEMBER_EPOCH", "ConsumerGroup.java#validateMemberEpoch",
           f"{NEW}: a consumer-protocol member fetches with an epoch not its own", 9),
        _e("ILLEGAL_GENERATION", "ConsumerGroup.java#validateMemberEpoch",
           f"{NEW}: a classic-protocol member of a consumer group with an old generation", 9),
    ),
    "TxnOffsetCommit": (
        _e("TRANSACTIONAL_ID_AUTHORIZATION_FAILED", "KafkaApis.scala#handleTxnOffsetCommitRequest",
           "an authorizer denies WRITE on the transactional id"),
        _authz("handleTxnOffsetCommitRequest"),
        _e("TOPIC_AUTHORIZATION_FAILED", "KafkaApis.scala#handleTxnOffsetCommitRequest",
           "per partition: an authorizer denies READ on the topic"),
        _e("UNKNOWN_TOPIC_OR_PARTITION", "KafkaApis.scala#handleTxnOffsetCommitRequest",
           "per partition: the topic or partition is not in the broker's metadata"),
        _e("INVALID_GROUP_ID",
           f"GroupCoordinatorService.java#commitTransactionalOffsets; {_STATUS}", _EMPTY_GROUP),
        _not_available("commitTransactionalOffsets"),
        _not_coordinator(),
        _e("COORDINATOR_LOAD_IN_PROGRESS",
           f"KafkaApis.scala#handleTxnOffsetCommitRequest; {_RUNTIME}; {_HANDLE}",
           "the group's partition is loading, or transaction verification hit a network error "
           "(v0-1 get COORDINATOR_NOT_AVAILABLE instead)", 2),
        _e("OFFSET_METADATA_TOO_LARGE",
           "OffsetMetadataManager.java#commitTransactionalOffset; "
           "GroupMetadataManager.scala#storeOffsets",
           "per partition: metadata longer than offset.metadata.max.bytes"),
        _e("UNKNOWN_MEMBER_ID",
           f"{_MEMBER_CHECK}; ConsumerGroup.java#validateOffsetCommit",
           "a member id (v3+) the group does not know; at any version, a consumer-protocol "
           "group with members (new coordinator)"),
        _e("ILLEGAL_GENERATION",
           "OffsetMetadataManager.java#validateTransactionalOffsetCommit; "
           "ClassicGroup.java#validateOffsetCommit; GroupCoordinator.scala#validateOffsetCommit",
           "a generation (v3+) not the group's or of a group that does not exist; "
           "STALE_MEMBER_EPOCH becomes this", 3),
        _fenced_instance(3, f"{_MEMBER_CHECK}; ClassicGroup.java#validateOffsetCommit"),
        _e("INVALID_PRODUCER_EPOCH",
           "AddPartitionsToTxnManager.scala#addTxnData; ProducerAppendInfo.java#checkProducerEpoch",
           "the producer epoch is old (PRODUCER_FENCED from verification becomes this)"),
        _e("INVALID_TXN_STATE",
           "AddPartitionsToTxnManager.scala; ProducerAppendInfo.java",
           "transaction verification: the offsets partition is not in the transaction"),
        _e("TRANSACTION_ABORTABLE",
           "CoordinatorPartitionWriter.scala#maybeStartTransactionVerification; "
           "AddPartitionsToTxnManager.scala",
           "transaction verification says abort (v0-3 get INVALID_TXN_STATE instead)", 4),
        _e("INVALID_PRODUCER_ID_MAPPING",
           "AddPartitionsToTxnManager.scala; "
           "GroupMetadataManager.scala#maybeConvertOffsetCommitError",
           "transaction verification: the transactional id has no such producer id"),
        _e("CONCURRENT_TRANSACTIONS", f"AddPartitionsToTxnManager.scala; {_HANDLE}",
           "transaction verification: the transaction is being committed or aborted"),
        _e("INVALID_COMMIT_OFFSET_SIZE", "GroupMetadataManager.scala#maybeConvertOffsetCommitError",
           f"{OLD}: the offsets are too large to append"),
        _e("REQUEST_TIMED_OUT", "GroupMetadataManager.scala#storeOffsets",
           f"{OLD}: the append times out (offsets.commit.timeout.ms)"),
        _e("UNSUPPORTED_VERSION", "KafkaApis.scala#handleTxnOffsetCommitRequest",
           "inter.broker.protocol.version below 0.11 (ZooKeeper mode only)"),
        _SERVER_ERROR,
    ),
    "FindCoordinator": (
        _e("GROUP_AUTHORIZATION_FAILED", "KafkaApis.scala#getCoordinator",
           "key type group: an authorizer denies DESCRIBE on the group"),
        _e("TRANSACTIONAL_ID_AUTHORIZATION_FAILED", "KafkaApis.scala#getCoordinator",
           "key type transaction: an authorizer denies DESCRIBE on the transactional id", 1),
        _e("CLUSTER_AUTHORIZATION_FAILED", "KafkaApis.scala#getCoordinator",
           "key type share: no CLUSTER_ACTION on the cluster", 6),
        _e("INVALID_REQUEST",
           "KafkaApis.scala#getCoordinator; FindCoordinatorRequest.java#CoordinatorType.forId",
           "an unknown key type, or key type share before v6 or without a share coordinator", 1),
        _e("COORDINATOR_NOT_AVAILABLE",
           "KafkaApis.scala#getCoordinator; GroupCoordinatorService.java#partitionFor",
           "the internal topic does not exist yet (its creation starts), has no live leader for "
           "the key's partition, or the coordinator is not started"),
        _e("UNKNOWN_SERVER_ERROR", "KafkaApis.scala#handle", "an unexpected exception"),
    ),
    "DescribeGroups": (
        _authz("handleDescribeGroupsRequest",
               "per group: an authorizer denies DESCRIBE on the group"),
        _not_available("describeGroups"),
        _not_coordinator(),
        _loading(),
        _SERVER_ERROR,
    ),
    "ConsumerGroupHeartbeat": (
        _e("UNSUPPORTED_VERSION", "KafkaApis.scala#handleConsumerGroupHeartbeat",
           "the consumer protocol is not enabled (old coordinator, "
           "group.coordinator.rebalance.protocols without consumer, or group.version 0)"),
        _authz("handleConsumerGroupHeartbeat"),
        _e("INVALID_REQUEST",
           "GroupMetadataManager.java#throwIfConsumerGroupHeartbeatRequestIsInvalid",
           "a malformed heartbeat: empty group or member id, first-join fields missing, "
           "a bad epoch, a topic regex"),
        _e("UNSUPPORTED_ASSIGNOR",
           "GroupMetadataManager.java#throwIfConsumerGroupHeartbeatRequestIsInvalid",
           "a server assignor the broker does not have"),
        _e("GROUP_ID_NOT_FOUND",
           "GroupMetadataManager.java#getOrMaybeCreateConsumerGroup; "
           "GroupMetadataManager.java#consumerGroup",
           "an epoch other than 0 for a group that does not exist, or the id is a classic group "
           "that cannot be converted"),
        _e("GROUP_MAX_SIZE_REACHED", "GroupMetadataManager.java#throwIfConsumerGroupIsFull",
           "group.consumer.max.size reached"),
        _e("UNKNOWN_MEMBER_ID",
           "ConsumerGroup.java#getOrMaybeCreateMember; "
           "GroupMetadataManager.java#throwIfStaticMemberIsUnknown",
           "a member id (or instance id) the group does not know"),
        _e("FENCED_MEMBER_EPOCH",
           "GroupMetadataManager.java#throwIfConsumerGroupMemberEpochIsInvalid",
           "the member epoch is neither the member's nor (with a subset of its partitions) "
           "the previous one"),
        _e("UNRELEASED_INSTANCE_ID", "GroupMetadataManager.java#throwIfInstanceIdIsUnreleased",
           f"{STATIC}: the instance id is still held by a member that has not left"),
        _e("FENCED_INSTANCE_ID", "GroupMetadataManager.java#throwIfInstanceIdIsFenced",
           f"{STATIC}: another member id holds the instance id"),
        _not_available("consumerGroupHeartbeat"),
        _not_coordinator(),
        _loading(),
        _SERVER_ERROR,
    ),
    "ConsumerGroupDescribe": (
        _e("UNSUPPORTED_VERSION", "KafkaApis.scala#handleConsumerGroupDescribe",
           "the consumer protocol is not enabled"),
        _authz("handleConsumerGroupDescribe",
               "per group: an authorizer denies DESCRIBE on the group"),
        _e("INVALID_GROUP_ID", "GroupCoordinatorService.java#consumerGroupDescribe",
           "per group: " + _EMPTY_GROUP),
        _e("GROUP_ID_NOT_FOUND", "GroupMetadataManager.java#consumerGroupDescribe",
           "per group: no such group, or it is not a consumer group"),
        _not_available("consumerGroupDescribe"),
        _not_coordinator(),
        _loading(),
        _SERVER_ERROR,
    ),
    "ShareGroupHeartbeat": (
        _e("UNSUPPORTED_VERSION", "KafkaApis.scala#handleShareGroupHeartbeat",
           "share groups are not enabled"),
        _authz("handleShareGroupHeartbeat"),
        _e("INVALID_REQUEST",
           "GroupMetadataManager.java#throwIfShareGroupHeartbeatRequestIsInvalid",
           "a malformed heartbeat: empty group or member id, no topics on the first, a bad "
           "epoch"),
        _e("GROUP_ID_NOT_FOUND",
           "GroupMetadataManager.java#getOrMaybeCreatePersistedShareGroup; "
           "GroupMetadataManager.java#shareGroup",
           "the group id is another kind of group, or a leave for a group that does not exist"),
        _e("GROUP_MAX_SIZE_REACHED", "GroupMetadataManager.java#throwIfShareGroupIsFull",
           "group.share.max.size reached"),
        _e("UNKNOWN_MEMBER_ID", "GroupMetadataManager.java#getOrMaybeSubscribeShareGroupMember",
           "a member id the group does not know"),
        _e("FENCED_MEMBER_EPOCH", "GroupMetadataManager.java#throwIfShareGroupMemberEpochIsInvalid",
           "the member epoch is neither the member's nor the previous one"),
        _not_available("shareGroupHeartbeat"),
        _not_coordinator(),
        _loading(),
        _SERVER_ERROR,
    ),
}

# The versions the entries above were read for: the valid versions of the specs at the commit,
# without those still unstable there (ConsumerGroupHeartbeat v1 got its regex errors later).
# ShareGroupHeartbeat v0 was itself unstable (share groups were early access) and is kept.
KNOWN_VERSIONS: dict[str, tuple[int, int]] = {
    "JoinGroup": (0, 9),
    "SyncGroup": (0, 5),
    "Heartbeat": (0, 4),
    "LeaveGroup": (0, 5),
    "OffsetCommit": (0, 9),
    "OffsetFetch": (0, 9),
    "TxnOffsetCommit": (0, 4),
    "FindCoordinator": (0, 6),
    "DescribeGroups": (0, 5),
    "ConsumerGroupHeartbeat": (0, 0),
    "ConsumerGroupDescribe": (0, 0),
    "ShareGroupHeartbeat": (0, 0),
}

class Instead(NamedTuple):
    """What a broker does where a user might expect an error it never sends there."""

    text: str
    source: str


_FIND = Instead(
    "FindCoordinator is answered from metadata, the leader of the key's partition, not from the "
    "coordinator's state: a client meets a moving or loading coordinator on its next group "
    "request", "KafkaApis.scala#getCoordinator")
_NO_GENERATIONS = Instead(
    "the consumer protocol has no generations: a stale member gets FENCED_MEMBER_EPOCH",
    "GroupMetadataManager.java#throwIfConsumerGroupMemberEpochIsInvalid")
_EMPTY_OK = "an empty group id is accepted, for old clients, and a null one cannot be encoded"

INSTEAD: dict[tuple[str, str], Instead] = {
    ("Heartbeat", "COORDINATOR_LOAD_IN_PROGRESS"): Instead(
        "while the group's partition loads, both coordinators answer heartbeats with NONE",
        "GroupCoordinatorService.java#heartbeat; GroupCoordinator.scala#handleHeartbeat"),
    ("FindCoordinator", "NOT_COORDINATOR"): _FIND,
    ("FindCoordinator", "COORDINATOR_LOAD_IN_PROGRESS"): _FIND,
    ("TxnOffsetCommit", "REBALANCE_IN_PROGRESS"): Instead(
        "transactional commits skip the group-state check",
        "ClassicGroup.java#validateOffsetCommit; GroupCoordinator.scala#validateOffsetCommit"),
    ("TxnOffsetCommit", "PRODUCER_FENCED"): Instead(
        "transaction verification turns it into INVALID_PRODUCER_EPOCH",
        "AddPartitionsToTxnManager.scala"),
    ("TxnOffsetCommit", "STALE_MEMBER_EPOCH"): Instead(
        "it is turned into ILLEGAL_GENERATION",
        "OffsetMetadataManager.java#validateTransactionalOffsetCommit"),
    ("OffsetCommit", "INVALID_GROUP_ID"): Instead(
        _EMPTY_OK, "GroupCoordinatorService.java#commitOffsets; "
        "GroupCoordinator.scala#isValidGroupId"),
    ("OffsetFetch", "INVALID_GROUP_ID"): Instead(
        _EMPTY_OK, "GroupCoordinatorService.java#fetchOffsets; "
        "GroupCoordinator.scala#isValidGroupId"),
    ("DescribeGroups", "INVALID_GROUP_ID"): Instead(
        _EMPTY_OK, "GroupCoordinatorService.java#describeGroups; "
        "GroupCoordinator.scala#isValidGroupId"),
    ("DescribeGroups", "GROUP_ID_NOT_FOUND"): Instead(
        "an unknown group is described as state Dead with error NONE",
        "GroupMetadataManager.java#describeGroups; GroupCoordinator.scala#handleDescribeGroup"),
    ("ConsumerGroupHeartbeat", "REBALANCE_IN_PROGRESS"): _NO_GENERATIONS,
    ("ConsumerGroupHeartbeat", "ILLEGAL_GENERATION"): _NO_GENERATIONS,
    ("ConsumerGroupHeartbeat", "INVALID_GROUP_ID"): Instead(
        "an empty group id gets INVALID_REQUEST",
        "GroupMetadataManager.java#throwIfConsumerGroupHeartbeatRequestIsInvalid"),
}

_ROBUSTNESS = "faults built on it are robustness tests, not races"


# ------------------------------------------------------------------------ questions


def _build_index() -> dict[tuple[str, str], tuple[tuple[int, int | None], ...]]:
    index: dict[tuple[str, str], list[tuple[int, int | None]]] = {}
    for api, entries in BROKER_ERRORS.items():
        for entry in entries:
            index.setdefault((api, entry.error), []).append(
                (entry.min_version, entry.max_version))
    return {key: tuple(ranges) for key, ranges in index.items()}


_INDEX = _build_index()


@lru_cache(maxsize=256)
def _api(api: str) -> str | None:
    """The table's name for `api` in any spelling the codec accepts; None when not in it."""
    if api in BROKER_ERRORS:
        return api
    try:
        name = codec.api_name(codec.api_key_of(api))
    except (codec.UnknownApiError, TypeError):
        return None
    return name if name in BROKER_ERRORS else None


@lru_cache(maxsize=256)
def _error(error: str) -> str:
    """The protocol's name for `error` (any spelling the codec accepts); ValueError if none."""
    try:
        return codec.error_name(codec.error_code(error))
    except codec.UnknownErrorCodeError:
        raise ValueError(f"unknown Kafka error {error!r}; use a name from errors.tsv, "
                         "e.g. NOT_COORDINATOR") from None


def _in(version: int, span: tuple[int, int | None]) -> bool:
    return span[0] <= version and (span[1] is None or version <= span[1])


def _judged(api: str, version: int) -> bool:
    low, high = KNOWN_VERSIONS[api]
    return low <= version <= high


def broker_returns(api: str, version: int | None, error: str) -> bool:
    """True when a real broker can answer `api` at `version` (None: some version) with `error`.

    An API not in the table, or a version it was not read for, is not judged (True). NONE is
    always True. `error` is a Kafka error name (or code, as text); an unknown one is a
    ValueError."""
    name = _error(error)
    table_api = _api(api)
    if name == "NONE" or table_api is None:
        return True
    spans = _INDEX.get((table_api, name), ())
    if version is None:
        return bool(spans)
    if not _judged(table_api, version):
        return True
    return any(_in(version, span) for span in spans)


def _versions_text(versions: Sequence[int]) -> str:
    """[0, 1, 2, 5] -> "v0-2, v5"."""
    runs: list[list[int]] = []
    for v in sorted(set(versions)):
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    return ", ".join(f"v{a}" if a == b else f"v{a}-{b}" for a, b in runs)


def _span_text(entry: BrokerError) -> str:
    if entry.max_version is None:
        return f"v{entry.min_version}+" if entry.min_version else "every version"
    return _versions_text(range(entry.min_version, entry.max_version + 1))


def _answers(api: str, versions: Sequence[int] | None) -> list[str]:
    """The errors a broker does answer `api` with, at any of `versions` (None: any version)."""
    out: list[str] = []
    for entry in BROKER_ERRORS[api]:
        applies = versions is None or any(
            _in(v, (entry.min_version, entry.max_version)) for v in versions)
        if applies and entry.error not in out:
            out.append(entry.error)
    return out


def why_not_at(api: str, versions: Iterable[int] | None, error: str) -> str | None:
    """One line for a user when a real broker never answers `api` at any of `versions`
    (None: at any version) with `error`, naming what it answers there; None when it may, or
    when the table does not judge that API or one of those versions."""
    name = _error(error)
    table_api = _api(api)
    wanted = None if versions is None else sorted(set(versions))
    if name == "NONE" or table_api is None or wanted == []:
        return None
    if wanted is None:
        if broker_returns(table_api, None, name):
            return None
    elif any(broker_returns(table_api, v, name) for v in wanted):
        return None  # includes every version the table does not judge
    at = "" if wanted is None else f" {_versions_text(wanted)}"
    never = f"a real broker never answers {table_api}{at} with {name}"
    elsewhere = [e for e in BROKER_ERRORS[table_api] if e.error == name]
    if elsewhere:
        spans = "; at ".join(_span_text(e) + (f": {e.when}" if e.when else "") for e in elsewhere)
        return f"{never}; it does at {spans}; {_ROBUSTNESS}"
    answers = "it answers " + ", ".join(_answers(table_api, wanted))
    instead = INSTEAD.get((table_api, name))
    said = f"{instead.text}; {answers}" if instead else answers
    return f"{never} ({said}); {_ROBUSTNESS}"


def why_not(api: str, version: int | None, error: str) -> str | None:
    """One line for a user when a real broker never answers `api` (at `version`; None: at any
    version) with `error`, naming what it does answer there; None when it may, or when the
    table does not judge that API or version."""
    return why_not_at(api, None if version is None else [version], error)


# ------------------------------------------------------------------------ the document


def table_rows() -> list[tuple[str, str, str, str, str]]:
    """(API, error, versions, when, source) for every entry, in table order."""
    return [
        (api, e.error, _span_text(e), e.when or "-", e.source)
        for api, entries in BROKER_ERRORS.items()
        for e in entries
    ]


def _markdown(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown_table() -> str:
    """The rows of `table_rows` as the markdown table of docs/broker-errors.md."""
    return _markdown(("API", "error", "versions", "when", "source"), table_rows())


def markdown_instead() -> str:
    """`INSTEAD` as the markdown table of docs/broker-errors.md."""
    rows = [(api, error, note.text, note.source) for (api, error), note in INSTEAD.items()]
    return _markdown(("API", "error never sent", "instead", "source"), rows)


_COMMAND = "generated by `python -m kafka_chaos_proxy.faults.broker_errors docs/broker-errors.md`"
# Each generated block of the document: its first marker, its last marker, its text.
BLOCKS = {
    "table": (f"<!-- table: {_COMMAND} -->", "<!-- end of table -->", markdown_table),
    "instead": (f"<!-- instead: {_COMMAND} -->", "<!-- end of instead -->", markdown_instead),
}


def generated_block(document: str, name: str) -> str:
    """The text of the generated block `name` of `document`, between its markers."""
    begin, end, _ = BLOCKS[name]
    _, found, rest = document.partition(begin)
    inside, found_end, _ = rest.partition(end)
    if not (found and found_end):
        raise ValueError(f"the document has no {name} markers ({begin} ... {end})")
    return inside.removeprefix("\n")


def with_tables(document: str) -> str:
    """`document` with every generated block replaced by its current text."""
    for name, (begin, end, render) in BLOCKS.items():
        old = generated_block(document, name)
        document = document.replace(f"{begin}\n{old}{end}", f"{begin}\n{render()}{end}")
    return document


if __name__ == "__main__":  # pragma: no cover - the regeneration command
    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        with open(path, "w", encoding="utf-8") as f:
            f.write(with_tables(text))
