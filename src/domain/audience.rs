//! 대상 고객 (CONTRACT 11절 "Audiences"): 회원을 바꾸는 호출의 입력 검사와 그 결과.
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// 호출 하나에 받는 id 수 (되풀이 포함).
pub const MAX_IDS: usize = 1000;
/// 결과에 적어 보내는 모르는 id 수 (나머지는 `unknown_count`로만 센다).
pub const MAX_UNKNOWN_LISTED: usize = 1000;

/// 호출의 id들: 1,000개 이하, 모두 UUID. 되풀이는 한 번으로 센다 (처음 나온 순서를 지킨다).
pub fn parse_ids(raw: &[String]) -> AppResult<Vec<Uuid>> {
    if raw.len() > MAX_IDS {
        return Err(AppError::bad_input("userIds", format!("userIds: 한 번에 {MAX_IDS}개까지입니다")));
    }
    let ids = raw
        .iter()
        .map(|r| Uuid::parse_str(r.trim()).map_err(|_| AppError::bad_input("userIds", format!("userIds: UUID가 아닙니다: {r:.40}"))))
        .collect::<AppResult<Vec<Uuid>>>()?;
    Ok(first_occurrences(&ids))
}

/// 되풀이된 id는 한 번으로, 처음 나온 순서대로 (호출의 id들, CSV 가져오기의 조각).
pub fn first_occurrences(ids: &[Uuid]) -> Vec<Uuid> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.iter().copied().filter(|u| seen.insert(*u)).collect()
}

/// 회원을 바꾼 결과.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AudienceChange {
    pub coupon_id: Uuid,
    pub added: u64,
    pub removed: u64,
    /// 어떤 사용자도 가리키지 않는 id, 처음 1,000개까지.
    pub unknown_user_ids: Vec<Uuid>,
    pub unknown_count: u64,
    pub audience_size: u64,
}

impl AudienceChange {
    /// 모르는 id들을 적는다 (앞의 1,000개까지만 목록에).
    pub fn with_unknown(mut self, unknown: Vec<Uuid>) -> Self {
        self.unknown_count = unknown.len() as u64;
        self.unknown_user_ids = unknown.into_iter().take(MAX_UNKNOWN_LISTED).collect();
        self
    }

    /// 모르는 id 하나를 센다 (가져오기: 조각마다). 목록은 앞의 1,000개까지, 같은 id는 한 번.
    pub fn note_unknown(&mut self, id: Uuid) {
        self.unknown_count += 1;
        if self.unknown_user_ids.len() < MAX_UNKNOWN_LISTED && !self.unknown_user_ids.contains(&id) {
            self.unknown_user_ids.push(id);
        }
    }

    /// 무언가 바뀌었는지: 바뀐 호출만 이벤트를 남긴다.
    pub fn changed(&self) -> bool {
        self.added > 0 || self.removed > 0
    }
}

/// CSV 가져오기의 한 줄로 보기에 너무 긴 줄 (UUID 36자에 따옴표·공백을 넉넉히 더해도 이보다 짧다).
/// 줄바꿈 없이 계속 오는 본문이 버퍼를 키우지 못하게 여기서 자른다.
const MAX_LINE: usize = 1024;

/// UUID가 아닌 줄 (CSV 가져오기). `line`은 머리 줄을 포함해 1부터 센 물리적 줄 번호.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    pub line: u64,
}

impl BadLine {
    pub fn message(&self) -> String {
        format!("{}번째 줄이 사용자 id(UUID)가 아닙니다", self.line)
    }
}

/// `POST /admin/coupons/{id}/audience.csv`의 본문을 조각씩 받아 id로 (CONTRACT 11절): 한 줄에 id 하나,
/// 첫 내용 줄은 머리 `user_id`일 수 있고, CRLF와 빈 줄을 받는다. 본문 전체를 모으지 않으려고 덜 온 줄만 쥔다.
#[derive(Debug, Default)]
pub struct CsvIds {
    /// 아직 줄바꿈이 오지 않은 줄의 앞부분.
    partial: Vec<u8>,
    /// 지금까지 끝난 줄 수.
    lines: u64,
    /// 내용 있는 줄을 이미 봤는지 (머리 줄은 그 앞에서만).
    started: bool,
}

impl CsvIds {
    /// 본문 조각 하나: 끝난 줄들의 id를 `out`에 덧붙인다.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<Uuid>) -> Result<(), BadLine> {
        while let Some(nl) = chunk.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                self.line_done(&chunk[..nl], out)?;
            } else {
                self.partial.extend_from_slice(&chunk[..nl]);
                let line = std::mem::take(&mut self.partial);
                self.line_done(&line, out)?;
            }
            chunk = &chunk[nl + 1..];
        }
        self.partial.extend_from_slice(chunk);
        if self.partial.len() > MAX_LINE {
            return Err(BadLine { line: self.lines + 1 });
        }
        Ok(())
    }

    /// 본문의 끝: 줄바꿈 없이 끝난 마지막 줄.
    pub fn finish(&mut self, out: &mut Vec<Uuid>) -> Result<(), BadLine> {
        let line = std::mem::take(&mut self.partial);
        if line.is_empty() { Ok(()) } else { self.line_done(&line, out) }
    }

    fn line_done(&mut self, raw: &[u8], out: &mut Vec<Uuid>) -> Result<(), BadLine> {
        self.lines += 1;
        let mut field = raw.trim_ascii();
        if self.lines == 1 {
            // 표 계산 프로그램이 붙이는 UTF-8 BOM.
            field = field.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(field).trim_ascii();
        }
        if field.is_empty() {
            return Ok(());
        }
        // 따옴표로 감싼 CSV 필드도 받는다.
        if let Some(inner) = field.strip_prefix(b"\"").and_then(|f| f.strip_suffix(b"\"")) {
            field = inner.trim_ascii();
        }
        let first = !self.started;
        self.started = true;
        if first && field.eq_ignore_ascii_case(b"user_id") {
            return Ok(());
        }
        match Uuid::try_parse_ascii(field) {
            Ok(id) => {
                out.push(id);
                Ok(())
            }
            Err(_) => Err(BadLine { line: self.lines }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_counted_once_and_capped() {
        let a = Uuid::new_v4().to_string();
        let b = Uuid::new_v4().to_string();
        let ids = parse_ids(&[a.clone(), b.clone(), a.clone()]).expect("유효");
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0].to_string(), a);
        let bad = parse_ids(&["not-a-uuid".into()]);
        assert!(matches!(bad, Err(AppError::BadUserInput { ref field, .. }) if field == "userIds"), "{bad:?}");
        // 되풀이를 포함해 1,000개까지: 같은 id 1,001번도 거절.
        assert!(parse_ids(&vec![a.clone(); 1000]).is_ok());
        let over = parse_ids(&vec![a; 1001]);
        assert!(matches!(over, Err(AppError::BadUserInput { ref field, .. }) if field == "userIds"), "{over:?}");
    }

    fn parse_all(chunks: &[&[u8]]) -> Result<Vec<Uuid>, BadLine> {
        let mut p = CsvIds::default();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut out)?;
        }
        p.finish(&mut out)?;
        Ok(out)
    }

    #[test]
    fn csv_lines_take_a_header_crlf_blank_lines_and_split_chunks() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let text = format!("\u{feff}user_id\r\n{a}\r\n\r\n  \n\"{b}\"\n{a}");
        let bytes = text.as_bytes();
        // 어디서 잘려 와도 같은 결과.
        for cut in 0..bytes.len() {
            assert_eq!(parse_all(&[&bytes[..cut], &bytes[cut..]]), Ok(vec![a, b, a]), "cut at {cut}");
        }
        assert_eq!(parse_all(&[b""]), Ok(vec![]));
    }

    #[test]
    fn a_bad_line_is_named_by_its_physical_number() {
        let a = Uuid::new_v4();
        assert_eq!(parse_all(&[format!("user_id\n{a}\n\nnope\n").as_bytes()]), Err(BadLine { line: 4 }));
        // 머리 줄은 첫 내용 줄에서만.
        assert_eq!(parse_all(&[format!("{a}\nuser_id\n").as_bytes()]), Err(BadLine { line: 2 }));
        assert_eq!(parse_all(&[format!("{a}\r\n{a}x").as_bytes()]), Err(BadLine { line: 2 }));
        // 줄바꿈 없이 끝없이 오는 본문은 버퍼가 자라기 전에 거절한다.
        let long = vec![b'a'; 2000];
        assert_eq!(parse_all(&[format!("{a}\n").as_bytes(), &long]), Err(BadLine { line: 2 }));
    }
}
