//! Reading a topic outside any consumer group, for an operator: a consumer that is
//! assigned the partitions it needs, reads from where it is told, and commits nothing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::logging::ClientLog;
use super::{KafkaConfig, bus_error, client_config};
use crate::{BusError, Delivery, Read};

/// How long a read may take, metadata and fetching together.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// [`crate::Bus::read`] on Kafka. Blocking: call it off the runtime's workers.
pub fn read(config: &KafkaConfig, topic: &str, which: Read) -> Result<Vec<Delivery>, BusError> {
    // librdkafka wants a group id for any consumer; nothing is committed under it.
    let consumer: BaseConsumer<ClientLog> =
        client_config(config, &[("group.id", "estore-reader"), ("enable.auto.commit", "false"), ("enable.auto.offset.store", "false")])
            .create_with_context(ClientLog::new("reader"))
            .map_err(|e| bus_error("create a Kafka consumer to read a topic", &e))?;
    let metadata = consumer.fetch_metadata(Some(topic), READ_TIMEOUT).map_err(|e| bus_error(&format!("read the metadata of `{topic}`"), &e))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    // Per partition: the first offset to read and the one after the last.
    let mut wanted: HashMap<i32, (i64, i64)> = HashMap::new();
    for partition in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, READ_TIMEOUT)
            .map_err(|e| bus_error(&format!("read the offsets of `{topic}`"), &e))?;
        let range = match which {
            Read::Newest(count) => (low.max(high - i64::from(count)), high),
            Read::At(position) if i64::from(position.partition) == i64::from(partition) => {
                let offset = i64::try_from(position.offset).unwrap_or(i64::MAX);
                (offset, offset.saturating_add(1).min(high))
            }
            Read::At(_) => continue,
        };
        if range.0 >= low && range.0 < range.1 {
            wanted.insert(partition, range);
        }
    }
    let mut assignment = TopicPartitionList::new();
    for (partition, (start, _)) in &wanted {
        assignment
            .add_partition_offset(topic, *partition, Offset::Offset(*start))
            .map_err(|e| bus_error(&format!("assign `{topic}`"), &e))?;
    }
    consumer.assign(&assignment).map_err(|e| bus_error(&format!("assign `{topic}`"), &e))?;
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut messages = Vec::new();
    while !wanted.is_empty() {
        if Instant::now() > deadline {
            return Err(BusError::Unavailable(format!("Kafka did not deliver `{topic}` within {} ms", READ_TIMEOUT.as_millis())));
        }
        let Some(polled) = consumer.poll(Duration::from_millis(200)) else { continue };
        let message = polled.map_err(|e| bus_error(&format!("read `{topic}`"), &e))?;
        let partition = message.partition();
        let Some(&(_, end)) = wanted.get(&partition) else { continue };
        if message.offset() < end {
            messages.push(super::consumer::delivery(topic, &message).map_err(BusError::Other)?);
        }
        if message.offset() + 1 >= end {
            wanted.remove(&partition);
        }
    }
    messages.sort_by_key(|m| (m.timestamp_ms, m.partition, m.offset));
    if let Read::Newest(count) = which {
        let excess = messages.len().saturating_sub(count as usize);
        messages.drain(..excess);
    }
    Ok(messages)
}
