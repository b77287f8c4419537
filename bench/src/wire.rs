//! A report on the wire as the bytes a node sends: encoded once, before the clock, and sent as
//! they are. The load generator shares the hub's two cores, and encoding a report inside the
//! timed pass (in the request body's task, after the call is made) is work a node does on its
//! own machine, not the hub's: a Ping's request is empty, so that work weighed on the Submit
//! side of the ratio only.

use std::marker::PhantomData;

use pingan_domain::pb;
use prost::{Message as _, bytes::BufMut as _};
use tonic::{
    Status,
    codec::{BufferSettings, Codec, EncodeBuf, Encoder},
    codegen::http::uri::PathAndQuery,
    transport::Channel,
};
use tonic_prost::ProstDecoder;

/// A report's protobuf encoding and how many values it carries.
#[derive(Debug, Clone)]
pub(crate) struct Encoded {
    bytes: Vec<u8>,
    pub(crate) values: u64,
}

impl Encoded {
    pub(crate) fn of(r: &pb::Report) -> Encoded {
        Encoded {
            bytes: r.encode_to_vec(),
            values: super::ingest::values_in(r),
        }
    }
}

/// Sends [`Encoded`] bytes as they are ([`AsIs`]); reads the reply as `U` (prost's decoder).
#[derive(Debug)]
struct AsEncoded<U>(PhantomData<U>);

impl<U: prost::Message + Default + Send + 'static> Codec for AsEncoded<U> {
    type Encode = Encoded;
    type Decode = U;
    type Encoder = AsIs;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        AsIs
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::default()
    }
}

/// Writes an [`Encoded`] report's bytes.
#[derive(Debug)]
struct AsIs;

impl Encoder for AsIs {
    type Item = Encoded;
    type Error = Status;

    fn encode(&mut self, item: Encoded, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item.bytes);
        Ok(())
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// One submitter's calls on one connection.
#[derive(Debug, Clone)]
pub(crate) struct Submitter(tonic::client::Grpc<Channel>);

impl Submitter {
    pub(crate) fn new(channel: Channel) -> Submitter {
        Submitter(tonic::client::Grpc::new(channel))
    }

    /// `ReportService.Submit` of an encoded report: its receipt, or the hub's refusal.
    pub(crate) async fn submit(&mut self, r: Encoded) -> Result<pb::Receipt, Status> {
        self.0
            .ready()
            .await
            .map_err(|e| Status::unknown(format!("the connection is not ready: {e}")))?;
        let path = PathAndQuery::from_static("/pingan.v1.ReportService/Submit");
        let codec = AsEncoded::<pb::Receipt>(PhantomData);
        Ok(self
            .0
            .unary(tonic::Request::new(r), path, codec)
            .await?
            .into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoded_report_is_the_report_and_counts_its_values() {
        let r = pb::Report {
            submission_id: "s1".into(),
            area: "510722101002".into(),
            period: "2026-10".into(),
            values: vec![pb::MetricValue {
                metric: "disputes.received".into(),
                total: Some(3),
                parts: Default::default(),
            }],
            packed: Some(pb::PackedValues {
                catalogue: 7,
                metrics: vec![0, 4],
                totals: vec![1, i64::MAX],
            }),
            ..Default::default()
        };
        let e = Encoded::of(&r);
        assert_eq!(e.values, 3);
        assert_eq!(pb::Report::decode(e.bytes.as_slice()).unwrap(), r);
    }
}
