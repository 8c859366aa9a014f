"""The phrase pools the simulated customers and agents write from (English and Korean).

Each pool is indexed [language][variant] -> phrases; the variant is a tone, an issue
type or an agent register depending on the pool. Wording deliberately reuses the
words the text features look for (features/text.py), but not in every message.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipeline.sources.simulator.behaviour import _EN, _KO

# --- text pools ------------------------------------------------------------------
# Each pool is indexed [language][variant] -> phrases; the variant is a tone, an issue
# type or an agent register depending on the pool. Wording deliberately reuses the
# words the text features look for (features/text.py), but not in every message.
_ISSUE_TEXT = {
    _EN: (
        ("Our dashboard is down and none of the team can work.",
         "The app keeps showing error 503 since this morning.",
         "Nothing loads on our account, the API returns errors for every request.",
         "Your service seems to be offline for us, pages just spin."),
        ("The export button does nothing when I click it.",
         "Reports show the wrong totals since the last update.",
         "I found a bug: the date filter resets every time I open the page.",
         "Attachments fail to upload from the mobile app."),
        ("How do I add a new user to my team?",
         "Where can I change the language of the notifications?",
         "Is there a way to export my data to Excel?",
         "Could you explain how the reporting filters work?"),
        ("It would be great if you could add a dark mode.",
         "Please consider adding a bulk edit option.",
         "Do you plan to support hardware security keys for login?"),
        ("My card payment failed but I was charged twice.",
         "The payment failed three times today and my plan got suspended.",
         "Checkout says payment failed even though the bank approved it."),
        ("I would like a refund for last month's invoice.",
         "I cancelled but was still billed, please refund me.",
         "I was charged for an order I never received and want my money back."),
        ("Can you send me a copy of invoice INV-2291?",
         "The VAT number on my invoice is wrong.",
         "Could you explain the extra line on my latest bill?"),
        ("I cannot log in, the password reset email never arrives.",
         "I'm locked out of my account after too many attempts.",
         "The login page keeps sending me back to the start."),
        ("I think my account was hacked, there are logins from another country.",
         "Someone changed my email address without my permission.",
         "I got a security alert about a login I did not make."),
        ("Please cancel my subscription at the end of this month.",
         "How do I cancel my plan? I can't find the option.",
         "I want to close my account and delete my data."),
        ("My order has not arrived yet, it was due last Tuesday.",
         "Tracking has not updated for a week.",
         "The delivery date passed and the parcel is nowhere to be seen."),
        ("The package arrived damaged and the item is broken.",
         "The screen of the device I received is cracked.",
         "Half of the items in the box were missing or broken."),
        ("Can I change the delivery address for my order?",
         "I moved, please update my shipping address.",
         "Please send my next order to my office instead."),
    ),
    _KO: (
        ("대시보드 접속이 안 되고 팀 전체가 일을 못 하고 있어요.",
         "오늘 아침부터 앱에서 계속 503 오류가 나요.",
         "API 요청이 전부 실패하고 있습니다. 서비스 장애인가요?"),
        ("내보내기 버튼을 눌러도 아무 반응이 없어요.",
         "지난 업데이트 이후 보고서 합계가 틀리게 나옵니다.",
         "모바일 앱에서 첨부파일 업로드가 안 돼요."),
        ("팀에 새 사용자를 어떻게 추가하나요?",
         "알림 언어는 어디서 바꿀 수 있나요?",
         "데이터를 엑셀로 내보내는 방법이 있을까요?"),
        ("다크 모드를 추가해 주시면 좋겠어요.",
         "일괄 수정 기능을 검토해 주실 수 있나요?"),
        ("카드 결제 오류가 났는데 이중 결제가 됐어요.",
         "오늘 결제가 세 번이나 실패해서 요금제가 정지됐습니다.",
         "은행에서는 승인됐는데 결제 오류라고 나와요."),
        ("지난달 청구 금액 환불 부탁드립니다.",
         "해지했는데도 요금이 청구됐어요. 환불해 주세요.",
         "받지도 못한 주문이 결제됐습니다. 환불 요청합니다."),
        ("INV-2291 인보이스 사본을 보내주실 수 있나요?",
         "인보이스에 사업자 번호가 잘못 나와 있어요.",
         "최근 청구서에 추가된 항목이 뭔지 설명 부탁드려요."),
        ("로그인이 안 돼요. 비밀번호 재설정 메일이 오지 않습니다.",
         "로그인 시도를 여러 번 해서 계정이 잠겼어요.",
         "로그인 페이지가 계속 처음으로 돌아가요."),
        ("계정이 해킹된 것 같아요. 해외에서 로그인 기록이 있어요.",
         "누군가 제 허락 없이 이메일 주소를 바꿨습니다.",
         "제가 하지 않은 로그인에 대한 보안 알림을 받았어요."),
        ("이번 달 말에 구독을 해지해 주세요.",
         "요금제 해지는 어떻게 하나요? 메뉴를 못 찾겠어요.",
         "계정을 삭제하고 데이터도 지워 주세요."),
        ("주문한 상품이 아직 도착하지 않았어요.",
         "배송 조회가 일주일째 업데이트가 안 됩니다.",
         "배송 예정일이 지났는데 택배가 안 와요."),
        ("택배가 파손된 상태로 왔고 제품이 망가졌어요.",
         "받은 기기의 화면이 깨져 있습니다.",
         "상자 안 물건 절반이 없거나 부서져 있었어요."),
        ("주문 배송지를 변경할 수 있나요?",
         "이사해서 배송 주소를 바꿔 주세요.",
         "다음 주문은 사무실로 보내 주세요."),
    ),
}
_SUBJECT_TEXT = {
    _EN: (
        ("Service down", "Dashboard not loading", "503 errors everywhere"),
        ("Export not working", "Wrong totals in reports", "Bug in date filter"),
        ("How to add a user", "Question about settings", "Exporting data"),
        ("Feature request", "Suggestion: bulk edit"),
        ("Payment failed", "Charged twice", "Card declined at checkout"),
        ("Refund request", "Billed after cancelling", "Money back for missing order"),
        ("Invoice copy", "Wrong VAT number", "Question about my bill"),
        ("Can't log in", "Locked out", "Password reset not arriving"),
        ("Account hacked?", "Security alert", "Email changed without permission"),
        ("Cancel subscription", "Close my account"),
        ("Where is my order?", "Tracking not updating", "Late delivery"),
        ("Item arrived broken", "Damaged package", "Missing items"),
        ("Change delivery address", "New shipping address"),
    ),
    _KO: (
        ("서비스 장애", "대시보드 접속 불가", "503 오류"),
        ("내보내기 오류", "보고서 합계 오류", "날짜 필터 버그"),
        ("사용자 추가 문의", "설정 문의", "데이터 내보내기 문의"),
        ("기능 요청", "일괄 수정 기능 제안"),
        ("결제 오류", "이중 결제", "카드 결제 실패"),
        ("환불 요청", "해지 후 청구", "미수령 주문 환불"),
        ("인보이스 사본 요청", "사업자 번호 오류", "청구서 문의"),
        ("로그인이 안 됩니다", "계정 잠김", "비밀번호 재설정 메일 미수신"),
        ("계정 해킹 의심", "보안 알림", "이메일 무단 변경"),
        ("구독 해지", "계정 삭제 요청"),
        ("주문 배송 문의", "배송 조회 안 됨", "배송 지연"),
        ("제품 파손", "택배 파손", "누락된 상품"),
        ("배송지 변경", "주소 변경"),
    ),
}
_GREETING = {_EN: ("Hi,", "Hello,", "Hi there,", "Hello support team,", "Hey,"),
             _KO: ("안녕하세요.", "안녕하세요, 문의드립니다.", "수고하십니다.")}
_URGENT_PHRASE = {
    _EN: ("This is urgent, please help ASAP.", "We need this fixed immediately.",
          "Our whole team is blocked right now.", "Please treat this as an emergency.",
          "URGENT - we have a deadline today."),
    _KO: ("긴급합니다. 빨리 확인 부탁드려요.", "지금 바로 처리해 주세요.", "급합니다!",
          "오늘 마감이라 급한 상황입니다."),
}
_OPENING_TONE = {
    _EN: (("Thanks in advance.", "Thank you!", "Any help is appreciated.", "Thanks.", ""),
          ("Please get back to me quickly.", "I need an answer today.",
           "Why is this so complicated?", "Please sort this out soon."),
          ("This is unacceptable!!", "Honestly this is ridiculous.",
           "I am really frustrated with your service!!!", "Worst experience ever.",
           "Fix it NOW!!!")),
    _KO: (("감사합니다.", "확인 부탁드립니다.", "잘 부탁드립니다.", ""),
          ("빨리 답변 주세요.", "오늘 안에 답변 부탁드립니다.", "왜 이렇게 복잡한가요?"),
          ("정말 최악이네요!!", "너무 실망스럽습니다.", "어이없네요. 제대로 좀 해주세요!",
           "짜증나서 못 쓰겠어요!!!")),
}
_CUSTOMER_REPLY = {
    _EN: (("Thanks, here is the screenshot you asked for.",
           "Sure, my account email is the one on this ticket.",
           "I tried that but it still does not work. What else can I do?",
           "Yes, it happens on both Chrome and Firefox.",
           "Hi,\nI attached the file. Let me know if you need anything else.",
           "The order number is in my first message. Thanks!",
           "OK, done. Thank you for the quick help."),
          ("Any update on this?", "I'm still waiting for a fix. When will this be resolved?",
           "Can someone please look at this? It's been days.", "Hello?? Is anyone there?",
           "I already sent that. Can we move forward please?"),
          ("This is the third time I'm explaining the same thing!!!",
           "STILL NOT FIXED. I WANT TO SPEAK TO A MANAGER.",
           "Your support is useless. I am going to cancel.",
           "Why does nobody read my messages?! Ridiculous.",
           "I am sick of waiting.\nFix this or refund me!!!")),
    _KO: (("요청하신 스크린샷 첨부합니다. 감사합니다.", "크롬과 사파리 둘 다 같은 문제가 있어요.",
           "말씀하신 대로 해봤는데 여전히 안 됩니다. 다른 방법이 있을까요?",
           "주문번호는 첫 메일에 있습니다.\n확인 부탁드립니다.", "네, 해결됐어요. 감사합니다!"),
          ("진행 상황이 어떻게 되나요?", "아직도 답변이 없네요. 언제 해결되나요?",
           "확인 좀 빨리 부탁드립니다??", "이미 보내드렸는데요. 빨리 진행해 주세요."),
          ("몇 번이나 같은 설명을 해야 하나요!!!", "아직도 해결이 안 됐네요. 정말 최악입니다.",
           "이런 서비스는 처음 봅니다. 환불해 주세요!!", "답답해서 미치겠네요. 책임자 연결해 주세요.")),
}
_CUSTOMER_FOLLOW_UP = {  # a second customer message while still waiting for the agent
    _EN: (("Just following up on this.", "Sorry, one more detail: it started yesterday.",
           "Adding a screenshot, thanks."),
          ("Any update?", "Hello??", "Is anyone looking at this?", "Still waiting...",
           "I sent this hours ago, still no answer?"),
          ("PLEASE RESPOND!!!", "Still nothing?! This is ridiculous.",
           "Nobody has answered for DAYS. Unacceptable!!!", "HELLO??? Anyone???")),
    _KO: (("혹시 확인하셨나요?", "추가로 말씀드리면 어제부터 이랬어요."),
          ("답변 기다리고 있습니다.", "아직도 답이 없네요??", "확인 부탁드려요?"),
          ("빨리 답변 주세요!!!", "며칠째 답이 없네요. 최악입니다!!", "장난하세요??? 답 좀 주세요!!")),
}
_CUSTOMER_REOPEN = {  # the customer writes again after the ticket was solved
    _EN: (("Sorry, the problem came back today.", "It worked for a day but now it's broken again.",
           "One more question about this, please."),
          ("It is not fixed, can you check again?", "Still not working, please reopen."),
          ("It's broken AGAIN. You said it was fixed!!", "Still not working. Why did you close my ticket?!",
           "This is a joke. Same problem again!!!")),
    _KO: (("죄송한데 문제가 다시 생겼어요.", "하루는 됐는데 다시 안 돼요."),
          ("해결이 안 됐어요. 다시 확인해 주세요.", "아직도 안 됩니다. 다시 봐주세요."),
          ("해결됐다고 하셨는데 또 안 됩니다!!", "왜 티켓을 닫으셨나요? 아직도 안 돼요. 최악입니다.")),
}
# Agent pools: variant 0 = normal register, 1 = apologetic (long wait or upset customer).
_AGENT_FIRST = {
    _EN: (("Hi, thanks for reaching out. Could you send us a screenshot of the error?",
           "Hello, thank you for contacting us. Can you confirm the email address on the account?",
           "Hi, sorry for the trouble. Which browser and device are you using?",
           "Thanks for your message. Could you share the order number?"),
          ("Hi, apologies for the slow reply, we are handling a high volume of requests. "
           "Could you send more details?",
           "I'm very sorry for the wait and the frustration. Could you confirm your account email "
           "so I can look into this right away?")),
    _KO: (("안녕하세요, 문의 주셔서 감사합니다. 오류 화면 캡처를 보내주실 수 있을까요?",
           "안녕하세요, 불편을 드려 죄송합니다. 사용 중인 브라우저와 기기를 알려주시겠어요?",
           "주문번호를 알려주시면 바로 확인하겠습니다."),
          ("답변이 늦어 정말 죄송합니다. 문의가 많아 지연되었습니다. 자세한 내용을 알려주시겠어요?",
           "기다리시게 해서 죄송합니다. 계정 이메일을 확인해 주시면 바로 살펴보겠습니다.")),
}
_AGENT_FOLLOW_UP = {
    _EN: (("Thanks for the details. I've passed this to our specialists and will update you.",
           "Thanks! Could you try clearing the cache and let me know if it helps?",
           "I checked your account and see the issue. One more question: when did it start?"),
          ("Sorry this is taking longer than it should. Could you try logging out and in again?",
           "I understand this is frustrating, I'm sorry. Could you send one more screenshot?")),
    _KO: (("자세한 내용 감사합니다. 담당 부서에 전달했고 진행 상황을 알려드리겠습니다.",
           "캐시를 삭제한 후 다시 시도해 보시겠어요?", "계정을 확인했습니다. 언제부터 발생했는지 알려주시겠어요?"),
          ("오래 기다리시게 해서 죄송합니다. 로그아웃 후 다시 로그인해 보시겠어요?",
           "불편을 드려 정말 죄송합니다. 화면 캡처를 한 장 더 보내주시겠어요?")),
}
_AGENT_HOLD = {
    _EN: (("I've escalated this to our engineering team and will update you as soon as I hear back.",
           "We are waiting for the carrier to respond; I'll keep you posted.",
           "Our payments provider is checking this transaction, I will get back to you."),
          ("Sorry for the delay. This needs our engineers; I'll update you as soon as I can.",)),
    _KO: (("기술팀에 전달했습니다. 답변 받는 대로 안내드리겠습니다.", "택배사 확인을 기다리고 있습니다. 곧 안내드리겠습니다."),
          ("지연되어 죄송합니다. 기술팀 확인 후 바로 연락드리겠습니다.",)),
}
_AGENT_SOLVE = {
    _EN: (("Good news: this is fixed now. Let us know if anything else comes up.",
           "I've processed the refund; it should appear in 3-5 business days.",
           "The issue is resolved on our side. Have a great day!",
           "Here is the guide with the steps: Help Center > Settings.\nThanks for contacting us!"),
          ("Sorry again for the trouble. This is now fixed; please let us know if it happens again.",
           "Thank you for your patience. I've resolved this and added a credit to your account.")),
    _KO: (("문제가 해결되었습니다. 추가 문의가 있으시면 언제든 연락 주세요. 감사합니다.",
           "환불 처리가 완료되었습니다. 3-5 영업일 내에 반영됩니다.", "해결 방법 안내드렸습니다. 이용해 주셔서 감사합니다."),
          ("불편을 드려 다시 한번 죄송합니다. 문제가 해결되었습니다.",
           "기다려 주셔서 감사합니다. 해결되었고 계정에 크레딧을 추가해 드렸습니다.")),
}
_NOTE = {  # internal notes are written in English whatever the customer's language
    _EN: (("Checked logs, matches the known incident.", "Customer is on the enterprise plan.",
           "Reproduced on staging, filed a bug.", "Refund approved by team lead.",
           "Asked the carrier for a status update.", "Handing over to the next shift, see thread."),
          ("Wrong queue, transferring.", "Transferring: needs another team.",
           "Escalating: customer very unhappy, please prioritise.")),
}
_NOTE[_KO] = _NOTE[_EN]


@dataclass(frozen=True)
class _Pool:
    """A text pool flattened into the body vocabulary: ``offset[lang, variant]`` and ``size``."""

    offset: np.ndarray  # int64, shape (2, n_variants)
    size: np.ndarray  # int64, shape (2, n_variants)

    def pick(self, lang: np.ndarray, variant: np.ndarray | int, u: np.ndarray) -> np.ndarray:
        """Vocabulary codes (int64, same shape as ``u``) for uniform draws ``u`` in [0, 1)."""
        size = self.size[lang, variant]
        return self.offset[lang, variant] + np.minimum((u * size).astype(np.int64), size - 1)


def _build_vocabulary() -> tuple[list[str], dict[str, _Pool]]:
    """Flatten all phrase pools into one list; code 0 is the empty string."""
    vocab = [""]
    pools: dict[str, _Pool] = {}
    sources = {
        "issue": _ISSUE_TEXT, "subject": _SUBJECT_TEXT, "urgent": _URGENT_PHRASE,
        "greeting": _GREETING, "opening_tone": _OPENING_TONE, "reply": _CUSTOMER_REPLY,
        "follow_up": _CUSTOMER_FOLLOW_UP, "reopen": _CUSTOMER_REOPEN, "agent_first": _AGENT_FIRST,
        "agent_follow_up": _AGENT_FOLLOW_UP, "agent_hold": _AGENT_HOLD, "agent_solve": _AGENT_SOLVE,
        "note": _NOTE,
    }
    for name, by_lang in sources.items():
        variants = [by_lang[lang] if isinstance(by_lang[lang][0], tuple) else (by_lang[lang],)
                    for lang in (_EN, _KO)]
        n_variants = len(variants[0])
        offset = np.zeros((2, n_variants), dtype=np.int64)
        size = np.zeros((2, n_variants), dtype=np.int64)
        for lang in (_EN, _KO):
            for v, phrases in enumerate(variants[lang]):
                offset[lang, v], size[lang, v] = len(vocab), len(phrases)
                vocab.extend(phrases)
        pools[name] = _Pool(offset, size)
    return vocab, pools


_VOCAB, _POOLS = _build_vocabulary()
_VOCAB_ARROW = pa.array(_VOCAB, type=pa.string())
_VOCAB_CHARS = np.array([len(phrase) for phrase in _VOCAB])
