"""Seeded, vectorised support-desk simulator: a contract-format export plus ground truth.

This module owns the project's embedded demo data (``dvc repro`` starts here), the
data the tests build on and the benchmark inputs at 10k / 100k / 1M tickets. One
seed gives identical frames and byte-identical files.

What is simulated, in order (every step is vectorised over tickets; the only Python
loops run over agent turns (at most ~10), groups, issue types or text pools):

1. **Arrivals** over ``days`` days from ``start`` (UTC), weighted by hour of day and
   day of week (quiet nights and weekends), a mild upward trend, and a few incident
   bursts of "service down" tickets.
2. **Customers**: a requester pool with heavy-tailed (Pareto) ticket counts, a
   per-customer temperament and language (about 20 % write Korean).
3. **Ticket profile**: channel, issue type, true urgency (from the issue type),
   urgent wording (correlated with urgency, not equal to it), routing (sometimes to
   the wrong group), the priority the agent sets (right about 75 % of the time,
   sometimes corrected later), rounds of conversation and reopens.
4. **Conversations**, turn by turn: the customer writes (or the ticket is on hold),
   the agent answers after a delay in *business time* (UTC 08:00-18:00 Mon-Fri at
   full speed, thin night/weekend cover) that depends on channel, group, agent speed,
   priority and queue load. Transfers, reassignments, internal notes, customer
   follow-ups while waiting, pending/hold/solved status changes, reopens, automatic
   solve of silent pending tickets, closing four days after solve.
5. **Survey**: offered a day after the final solve, answered by a minority; unhappy
   customers answer less often (missing not at random). The bad probability comes
   from waits, back-and-forth, transfers, reopens, wording, channel, agent skill, a
   wrong priority and the customer's earlier unhappy tickets, plus unobserved noise.
6. **Export cut**: only events up to ``export_at`` (= start + days) are kept, and the
   ticket columns (status, priority, group, assignee, satisfaction) are their values
   as of that moment, so the last days form an open queue to score.

Times are handled as float seconds since ``start`` and floored to whole seconds
when written, the resolution of the export format.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import contract
from pipeline.io import ExportError, write_export, write_table

HOUR_S = 3600.0
DAY_S = 86400.0
MINUTE_S = 60.0

CHANNELS = ("email", "web", "chat", "phone", "social")
GROUPS = ("billing", "technical", "accounts", "shipping", "escalations")
LANGUAGES = ("en", "ko")
TONES = ("calm", "impatient", "angry")
_EN, _KO = 0, 1
_IMPATIENT, _ANGRY = 1, 2  # indices into TONES
_ESCALATIONS = GROUPS.index("escalations")
_TECHNICAL = GROUPS.index("technical")

# --- channel dynamics (aligned with CHANNELS) -------------------------------------
CHANNEL_SHARE = {  # per customer language
    _EN: (0.36, 0.24, 0.21, 0.10, 0.09),
    _KO: (0.30, 0.22, 0.32, 0.06, 0.10),
}
AGENT_REPLY_MEDIAN_MINUTES = np.array([240.0, 180.0, 3.0, 12.0, 60.0])  # business minutes
CUSTOMER_REPLY_MEDIAN_MINUTES = np.array([360.0, 300.0, 1.5, 180.0, 60.0])  # customer-active minutes
FOLLOW_UP_AFTER_MINUTES = np.array([1440.0, 1080.0, 6.0, 720.0, 240.0])  # wall clock: customer nags after
ROUNDS_FACTOR = np.array([1.0, 1.0, 1.25, 0.6, 0.9])  # scales the extra rounds of an issue
CHANNEL_BAD_LOGIT = np.array([0.0, 0.05, -0.25, -0.35, 0.35])
SURVEY_ANSWER_P = np.array([0.27, 0.25, 0.34, 0.20, 0.0])  # happy customers; social: no survey

# --- groups (aligned with GROUPS) --------------------------------------------------
GROUP_SLOWNESS = np.array([1.0, 1.3, 0.9, 0.85, 1.6])  # multiplies reply delays
GROUP_SKILL = np.array([0.0, -0.1, 0.1, 0.0, 0.6])
GROUP_HOLD_P = np.array([0.06, 0.12, 0.05, 0.14, 0.15])  # share of non-final turns put on hold
TICKETS_PER_AGENT_DAY = 25.0

# --- priorities (aligned with contract.PRIORITIES) ---------------------------------
PRIORITY_SLOWNESS = np.array([1.5, 1.0, 0.6, 0.35])
UNSET_PRIORITY_SLOWNESS = 1.1
URGENT_WORDING_P = np.array([0.04, 0.10, 0.35, 0.70])  # by true urgency


@dataclass(frozen=True)
class _Issue:
    """An issue type: its home group, how urgent it tends to be, how hard it is."""

    name: str
    group: str
    share: float
    urgency_p: tuple[float, float, float, float]  # P(low, normal, high, urgent)
    extra_rounds: float  # mean of the Poisson number of agent rounds after the first
    reopen_p: float
    bad_logit: float  # push toward a bad rating from the issue alone


ISSUES = (
    _Issue("outage", "technical", 0.05, (0.0, 0.05, 0.25, 0.70), 1.5, 0.10, 0.35),
    _Issue("bug_report", "technical", 0.10, (0.10, 0.55, 0.30, 0.05), 1.6, 0.12, 0.15),
    _Issue("how_to", "technical", 0.14, (0.70, 0.28, 0.02, 0.0), 0.6, 0.04, -0.50),
    _Issue("feature_request", "technical", 0.04, (0.85, 0.15, 0.0, 0.0), 0.5, 0.02, 0.10),
    _Issue("payment_failed", "billing", 0.07, (0.0, 0.15, 0.45, 0.40), 1.2, 0.08, 0.30),
    _Issue("refund_request", "billing", 0.09, (0.05, 0.55, 0.35, 0.05), 1.3, 0.08, 0.35),
    _Issue("invoice_question", "billing", 0.08, (0.55, 0.40, 0.05, 0.0), 0.8, 0.04, -0.30),
    _Issue("login_problem", "accounts", 0.09, (0.05, 0.40, 0.40, 0.15), 0.9, 0.08, 0.0),
    _Issue("account_hacked", "accounts", 0.025, (0.0, 0.0, 0.20, 0.80), 1.4, 0.08, 0.20),
    _Issue("cancel_subscription", "accounts", 0.06, (0.35, 0.55, 0.10, 0.0), 0.7, 0.04, 0.25),
    _Issue("shipping_delay", "shipping", 0.10, (0.05, 0.55, 0.35, 0.05), 1.0, 0.10, 0.30),
    _Issue("damaged_item", "shipping", 0.05, (0.0, 0.35, 0.55, 0.10), 1.1, 0.06, 0.20),
    _Issue("address_change", "shipping", 0.05, (0.45, 0.45, 0.10, 0.0), 0.5, 0.03, -0.30),
)
_OUTAGE = 0
_ISSUE_HOME = np.array([GROUPS.index(i.group) for i in ISSUES])
_ISSUE_SHARE = np.array([i.share for i in ISSUES]) / sum(i.share for i in ISSUES)
_ISSUE_URGENCY_CUM = np.cumsum(np.array([i.urgency_p for i in ISSUES]), axis=1)
_ISSUE_EXTRA_ROUNDS = np.array([i.extra_rounds for i in ISSUES])
_ISSUE_REOPEN_P = np.array([i.reopen_p for i in ISSUES])
_ISSUE_BAD_LOGIT = np.array([i.bad_logit for i in ISSUES])
_ISSUE_ESCALATES = np.isin([i.name for i in ISSUES], ("outage", "account_hacked", "payment_failed"))

# --- calendar shapes (UTC; rows Monday..Sunday, columns hour 0..23) ----------------
_ARRIVAL_BY_HOUR = np.array(
    [0.12, 0.08, 0.06, 0.06, 0.08, 0.15, 0.30, 0.55, 0.85, 1.0, 1.05, 1.0,
     0.95, 1.0, 1.0, 0.95, 0.85, 0.70, 0.55, 0.45, 0.38, 0.30, 0.22, 0.16]
)
_ARRIVAL_BY_WEEKDAY = np.array([1.15, 1.05, 1.0, 1.0, 0.9, 0.45, 0.40])


def _agent_rate_table() -> np.ndarray:
    """Agent working capacity per (weekday, hour): 1.0 in business hours, thin cover otherwise."""
    rate = np.full((7, 24), 0.06)
    rate[:5, 6:8] = 0.25
    rate[:5, 8:18] = 1.0
    rate[:5, 18:22] = 0.25
    rate[5:, :] = 0.04
    rate[5:, 9:17] = 0.15
    return rate


def _customer_rate_table() -> np.ndarray:
    """How active customers are per (weekday, hour); they answer less at night."""
    rate = np.full((7, 24), 0.1)
    rate[:, 6:8] = 0.4
    rate[:, 8:22] = 1.0
    rate[:, 22:24] = 0.4
    rate[5:, :] *= 0.75
    return rate


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


# --- public API --------------------------------------------------------------------
@dataclass(frozen=True)
class Simulation:
    """A simulated export (as of ``export_at``) and the ground truth behind it."""

    tickets: pd.DataFrame  # contract columns; created_at/satisfaction_at tz-aware UTC
    events: pd.DataFrame  # contract columns, sorted by (ticket_id, at), ties in file order
    truth: pd.DataFrame  # ticket_id, p_bad_true (0-1), urgency_true (low/normal/high/urgent)
    export_at: pd.Timestamp  # the export moment (UTC)


def simulate(n_tickets: int, seed: int, start: str = "2026-01-05", days: int = 120) -> Simulation:
    """Simulate ``n_tickets`` tickets created over ``days`` days from ``start`` (UTC).

    Deterministic for a given (n_tickets, seed, start, days). The export moment is
    ``start + days``; tickets and events are cut there.
    """
    start_ts, n_tickets, seed, days = _validate(n_tickets, seed, start, days)
    world = _World.build(start_ts, days, seed, n_tickets)
    created_s, incident = _draw_arrivals(_rng(seed, "arrivals"), n_tickets, world, days)
    customers = _draw_customers(_rng(seed, "customers"), n_tickets)
    profile = _draw_profiles(_rng(seed, "profiles"), created_s, incident, customers, world.staff)
    world = world.with_load(created_s, profile.initial_group, days)
    buffer = _EventBuffer()
    conversation = _play_conversations(_rng(seed, "conversations"), profile, world, buffer)
    rating = _rate(_rng(seed, "rating"), profile, conversation, customers.requester, world.staff)
    export_s = days * DAY_S
    openings = _opening_messages(_rng(seed, "openings"), profile)
    events, state = _assemble_events(buffer, openings, world, start_ts, export_s)
    tickets = _assemble_tickets(_rng(seed, "subjects"), profile, customers, state, rating, start_ts,
                                export_s)
    truth = pd.DataFrame(
        {
            "ticket_id": tickets["ticket_id"],
            "p_bad_true": rating.p_bad,
            "urgency_true": pd.Series(
                np.asarray(contract.PRIORITIES, dtype=object)[profile.urgency], dtype="str"
            ),
        }
    )
    return Simulation(tickets, events, truth, start_ts + pd.Timedelta(seconds=export_s))


def simulate_export(
    out_dir: str | os.PathLike,
    n_tickets: int,
    seed: int,
    start: str = "2026-01-05",
    days: int = 120,
    fmt: str = "csv",
) -> Simulation:
    """Simulate, then write ``tickets.<fmt>``, ``events.<fmt>`` and ``truth.csv`` into ``out_dir``.

    Tickets and events go through :func:`pipeline.io.write_export`; the truth table
    through :func:`pipeline.io.write_table` (atomic). Returns the simulation.
    """
    if fmt not in ("csv", "parquet"):
        raise ExportError(f"unknown export format {fmt!r}; use csv or parquet")
    simulation = simulate(n_tickets, seed, start=start, days=days)
    write_export(out_dir, simulation.tickets, simulation.events, fmt)
    write_table(simulation.truth, Path(out_dir) / "truth.csv")
    return simulation


def _validate(n_tickets: int, seed: int, start: str, days: int) -> tuple[pd.Timestamp, int, int, int]:
    """Check the arguments; one-line :class:`ExportError` for anything a user can get wrong."""
    if isinstance(n_tickets, bool) or not isinstance(n_tickets, (int, np.integer)) or n_tickets < 1:
        raise ExportError(f"--tickets must be a positive whole number, got {n_tickets!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ExportError(f"--seed must be a whole number >= 0, got {seed!r}")
    if isinstance(days, bool) or not isinstance(days, (int, np.integer)) or days < 1:
        raise ExportError(f"--days must be a positive whole number, got {days!r}")
    try:
        start_ts = pd.Timestamp(start)
    except (ValueError, TypeError):
        raise ExportError(f"--start must be a date like 2026-01-05, got {start!r}") from None
    if start_ts is pd.NaT:
        raise ExportError(f"--start must be a date like 2026-01-05, got {start!r}")
    start_ts = start_ts.tz_localize("UTC") if start_ts.tzinfo is None else start_ts.tz_convert("UTC")
    return start_ts.as_unit("us"), int(n_tickets), int(seed), int(days)


def _rng(seed: int, stream: str) -> np.random.Generator:
    """An independent random stream per simulation step, so changing one step leaves the others alone."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode())])


# --- the world: calendar clocks, staff, queue load -----------------------------------
@dataclass(frozen=True)
class _Clock:
    """Turns wall-clock seconds into 'effective hours' of work and back.

    ``rate`` per hour since start is piecewise constant (> 0), so the cumulative
    clock is strictly increasing and both directions are linear interpolations.
    """

    grid_h: np.ndarray  # hour boundaries since start, shape (H + 1,)
    cum_h: np.ndarray  # effective hours accumulated at each boundary, shape (H + 1,)

    rate: np.ndarray  # effective hours per wall hour, shape (H,)

    @classmethod
    def from_rates(cls, rate_per_hour: np.ndarray) -> "_Clock":
        grid = np.arange(len(rate_per_hour) + 1, dtype=np.float64)
        return cls(grid, np.concatenate([[0.0], np.cumsum(rate_per_hour)]), rate_per_hour)

    def forward(self, t_s: np.ndarray) -> np.ndarray:
        """Effective hours reached at wall time ``t_s`` (seconds since start, clipped to the grid)."""
        hours = np.clip(t_s / HOUR_S, 0.0, len(self.rate) - 1e-6)
        whole = hours.astype(np.int64)
        return self.cum_h[whole] + self.rate[whole] * (hours - whole)

    def later(self, t_s: np.ndarray, effective_h: np.ndarray) -> np.ndarray:
        """Wall time (seconds since start) once ``effective_h`` hours of work are done after ``t_s``."""
        return self.inverse(self.forward(t_s) + effective_h)

    def inverse(self, cum: np.ndarray) -> np.ndarray:
        return np.interp(cum, self.cum_h, self.grid_h) * HOUR_S


@dataclass(frozen=True)
class _Staff:
    """Agents: id, group, speed (multiplies delays) and skill (lowers reopen and bad odds)."""

    ids: tuple[str, ...]
    group: np.ndarray  # int, per agent
    slowness: np.ndarray  # float, per agent
    skill: np.ndarray  # float, per agent
    members: tuple[np.ndarray, ...]  # agent indices per group
    member_p: tuple[np.ndarray, ...]  # how much of the group's work each member takes

    @classmethod
    def hire(cls, rng: np.random.Generator, n_tickets: int, days: int) -> "_Staff":
        """Size teams to about 25 tickets per agent per day, at least 2 agents per group."""
        home_share = np.bincount(_ISSUE_HOME, weights=_ISSUE_SHARE, minlength=len(GROUPS))
        home_share[_ESCALATIONS] = 0.06
        total = n_tickets / days / TICKETS_PER_AGENT_DAY
        per_group = np.maximum(2, np.round(total * home_share)).astype(int)
        group = np.repeat(np.arange(len(GROUPS)), per_group)
        n_agents = len(group)
        width = max(3, len(str(n_agents)))
        ids = tuple(f"agent_{i + 1:0{width}d}" for i in range(n_agents))
        slowness = np.exp(rng.normal(0.0, 0.3, n_agents))
        skill = rng.normal(0.0, 0.5, n_agents) + GROUP_SKILL[group]
        members = tuple(np.flatnonzero(group == g) for g in range(len(GROUPS)))
        member_p = []
        for m in members:
            w = rng.uniform(0.5, 1.5, len(m))
            member_p.append(w / w.sum())
        return cls(ids, group, slowness, skill, members, tuple(member_p))

    def pick(self, rng: np.random.Generator, group: np.ndarray) -> np.ndarray:
        """One agent index per entry of ``group`` (int array), drawn from that group's members."""
        agent = np.empty(len(group), dtype=np.int64)
        for g, (m, p) in enumerate(zip(self.members, self.member_p)):
            rows = np.flatnonzero(group == g)
            agent[rows] = m[rng.choice(len(m), size=len(rows), p=p)]
        return agent


@dataclass(frozen=True)
class _World:
    """Everything shared by all tickets: start, clocks, arrival weights, staff, queue load."""

    start: pd.Timestamp
    weekday: np.ndarray  # per hour since start, 0 = Monday
    hour: np.ndarray  # per hour since start, 0..23 (UTC)
    agent_clock: _Clock
    customer_clock: _Clock
    staff: _Staff
    load: np.ndarray | None  # (n_groups, n_hours) reply-delay multiplier

    @classmethod
    def build(cls, start: pd.Timestamp, days: int, seed: int, n_tickets: int) -> "_World":
        # Conversations of late tickets run past the export; the clocks cover 400 days more.
        n_hours = (days + 400) * 24
        stamps = np.datetime64(start.tz_convert(None).floor("h").as_unit("s").to_datetime64(), "h")
        hours = stamps + np.arange(n_hours)
        weekday = (hours.astype("datetime64[D]").astype(np.int64) + 3) % 7
        hour = hours.astype(np.int64) % 24
        return cls(
            start=start,
            weekday=weekday,
            hour=hour,
            agent_clock=_Clock.from_rates(_agent_rate_table()[weekday, hour]),
            customer_clock=_Clock.from_rates(_customer_rate_table()[weekday, hour]),
            staff=_Staff.hire(_rng(seed, "staff"), n_tickets, days),
            load=None,
        )

    def with_load(self, created_s: np.ndarray, group: np.ndarray, days: int) -> "_World":
        """Add the queue-load table: expected open tickets per group relative to the group's average.

        Open tickets at hour h are estimated as arrivals convolved with an exponential
        survival (mean 30 h), half global, half per group. Outside the window the load
        is average (1.0). The first days are warmed up with a copy of the first ten days,
        as if the desk had been running before.
        """
        n_hours = days * 24
        hour_idx = np.minimum((created_s // HOUR_S).astype(np.int64), n_hours - 1)
        arrivals = np.zeros((len(GROUPS) + 1, n_hours))
        arrivals[:-1] = np.bincount(group * n_hours + hour_idx, minlength=len(GROUPS) * n_hours).reshape(
            len(GROUPS), n_hours)
        arrivals[-1] = arrivals[:-1].sum(axis=0)
        kernel = np.exp(-np.arange(240) / 30.0)
        warm = min(n_hours, 240)
        relative = np.ones((len(GROUPS) + 1, n_hours))
        for g in range(len(GROUPS) + 1):
            padded = np.concatenate([arrivals[g, :warm], arrivals[g]])
            open_now = np.convolve(padded, kernel)[warm: warm + n_hours]
            mean = open_now.mean()
            if mean > 0:
                relative[g] = open_now / mean
        relative[_ESCALATIONS] = relative[-1]  # escalations get no direct routing
        blended = np.sqrt(relative[:-1] * relative[-1])
        load = np.ones((len(GROUPS), len(self.hour)))
        load[:, :n_hours] = np.clip(blended, 0.3, 4.0) ** 0.7
        return _World(self.start, self.weekday, self.hour, self.agent_clock, self.customer_clock,
                      self.staff, load)

    def load_at(self, group: np.ndarray, t_s: np.ndarray) -> np.ndarray:
        hour_idx = np.clip((t_s // HOUR_S).astype(np.int64), 0, self.load.shape[1] - 1)
        return self.load[group, hour_idx]


# --- arrivals, customers, ticket profiles ------------------------------------------
def _draw_arrivals(rng: np.random.Generator, n: int, world: _World,
                   days: int) -> tuple[np.ndarray, np.ndarray]:
    """Creation times (float seconds since start, sorted) and an incident flag, both shape (n,).

    About 4 % of tickets belong to incident bursts: one incident per ~20 days, tickets
    arriving with an exponential tail (mean 3 h) after the incident starts.
    """
    n_hours = days * 24
    weight = (_ARRIVAL_BY_HOUR[world.hour[:n_hours]] * _ARRIVAL_BY_WEEKDAY[world.weekday[:n_hours]]
              * (1.0 + 0.2 * np.arange(n_hours) / n_hours))
    n_incident = int(rng.binomial(n, 0.04)) if days >= 7 and n >= 200 else 0
    n_regular = n - n_incident
    hours = rng.choice(n_hours, size=n_regular, p=weight / weight.sum())
    regular = (hours + rng.random(n_regular)) * HOUR_S
    n_incidents = max(1, days // 20)
    incident_start = rng.uniform(0, max(n_hours - 12, 1), n_incidents) * HOUR_S
    burst = incident_start[rng.integers(0, n_incidents, n_incident)] + rng.exponential(3 * HOUR_S, n_incident)
    burst = np.minimum(burst, days * DAY_S - 1.0)
    created = np.concatenate([regular, burst])
    incident = np.concatenate([np.zeros(n_regular, bool), np.ones(n_incident, bool)])
    order = np.argsort(created, kind="stable")
    return created[order], incident[order]


@dataclass(frozen=True)
class _Customers:
    """Per ticket: requester index, language (0 en, 1 ko), temperament (standard normal)."""

    requester: np.ndarray
    language: np.ndarray
    temperament: np.ndarray


def _draw_customers(rng: np.random.Generator, n: int) -> _Customers:
    """Assign tickets to requesters: 40 % one-off customers, 60 % from a pool of regulars.

    Regulars (12 % of ``n``) have Pareto-distributed activity (capped), so a few write
    dozens of tickets. Requester numbers are shuffled so that the id says nothing
    about the kind of customer.
    """
    n_regulars = max(1, int(round(0.12 * n)))
    one_off = rng.random(n) < 0.4
    activity = np.minimum(rng.pareto(1.3, n_regulars) + 1.0, 50.0)
    requester = rng.choice(n_regulars, size=n, p=activity / activity.sum())
    requester[one_off] = n_regulars + np.arange(int(one_off.sum()))
    n_requesters = n_regulars + int(one_off.sum())
    requester = rng.permutation(n_requesters)[requester]
    korean = (rng.random(n_requesters) < 0.2).astype(np.int64)
    temperament = rng.standard_normal(n_requesters)
    return _Customers(requester, korean[requester], temperament[requester])


@dataclass(frozen=True)
class _Profile:
    """Per-ticket plan drawn before the conversation is played (all arrays shape (n,))."""

    t0: np.ndarray  # created, float seconds since start
    language: np.ndarray
    temperament: np.ndarray
    channel: np.ndarray
    issue: np.ndarray
    urgency: np.ndarray  # true urgency 0..3 (contract.PRIORITIES)
    urgent_wording: np.ndarray  # bool
    opening_tone: np.ndarray  # 0..2 (TONES)
    home_group: np.ndarray
    initial_group: np.ndarray
    misrouted: np.ndarray  # bool
    bouncy: np.ndarray  # bool: this ticket tends to be passed around
    primary_agent: np.ndarray
    initial_priority: np.ndarray  # 0..3, -1 = never set
    correction_turn: np.ndarray  # turn at which a wrong priority is corrected, -1 = never
    segment_end: np.ndarray  # (n, 3) turn index ending each solve segment, -1 = no segment
    n_turns: np.ndarray
    auto_solve: np.ndarray  # bool: last reply is a question nobody answers; the system solves


def _draw_profiles(rng: np.random.Generator, created_s: np.ndarray, incident: np.ndarray,
                   customers: _Customers, staff: _Staff) -> _Profile:
    """Draw each ticket's plan: channel, issue, true urgency, wording, routing, priority, turns.

    Incident tickets are outages of at least high urgency. 10 % are routed to the
    wrong group, 6 % are "bouncy" (passed around a lot).
    """
    n = len(created_s)
    language = customers.language
    channel = _draw_channel(rng, language)
    issue = np.where(incident, _OUTAGE, rng.choice(len(ISSUES), size=n, p=_ISSUE_SHARE))
    urgency = (rng.random(n)[:, None] >= _ISSUE_URGENCY_CUM[issue][:, :-1]).sum(axis=1)
    urgency = np.where(incident, np.maximum(urgency, 2), urgency)
    urgent_wording = rng.random(n) < URGENT_WORDING_P[urgency]
    # Opening tone: temperament and urgency make a first message sharper.
    opening_mood = 0.7 * customers.temperament + 0.3 * urgency + rng.normal(0, 0.5, n)
    opening_tone = np.digitize(opening_mood, [1.0, 1.8])
    home = _ISSUE_HOME[issue]
    misrouted = rng.random(n) < 0.10
    initial_group = np.where(misrouted, _other_group(rng, home), home)
    primary_agent = staff.pick(rng, home)
    initial_priority, correction_wanted = _draw_priority(rng, urgency, urgent_wording)
    segment_end, n_turns, auto_solve = _draw_rounds(rng, issue, channel, staff.skill[primary_agent])
    correction_turn = np.where(
        correction_wanted & (n_turns >= 2),
        1 + (rng.random(n) * np.maximum(n_turns - 1, 1)).astype(np.int64),
        -1,
    )
    return _Profile(
        t0=created_s, language=language, temperament=customers.temperament, channel=channel,
        issue=issue, urgency=urgency, urgent_wording=urgent_wording, opening_tone=opening_tone,
        home_group=home, initial_group=initial_group, misrouted=misrouted,
        bouncy=rng.random(n) < 0.06, primary_agent=primary_agent,
        initial_priority=initial_priority, correction_turn=correction_turn,
        segment_end=segment_end, n_turns=n_turns, auto_solve=auto_solve,
    )


def _draw_channel(rng: np.random.Generator, language: np.ndarray) -> np.ndarray:
    cum = np.cumsum(np.array([CHANNEL_SHARE[_EN], CHANNEL_SHARE[_KO]]), axis=1)
    cum /= cum[:, -1:]
    return (rng.random(len(language))[:, None] >= cum[language][:, :-1]).sum(axis=1)


def _other_group(rng: np.random.Generator, current: np.ndarray) -> np.ndarray:
    """A uniformly drawn group different from ``current``, never escalations; shape like ``current``."""
    routable = [g for g in range(len(GROUPS)) if g != _ESCALATIONS]
    candidates = np.zeros((len(GROUPS), len(routable)), dtype=np.int64)
    n_candidates = np.zeros(len(GROUPS), dtype=np.int64)
    for c in range(len(GROUPS)):
        others = [g for g in routable if g != c]
        candidates[c, : len(others)] = others
        n_candidates[c] = len(others)
    pick = (rng.random(len(current)) * n_candidates[current]).astype(np.int64)
    return candidates[current, pick]


def _draw_priority(rng: np.random.Generator, urgency: np.ndarray,
                   urgent_wording: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The priority the agent sets at pickup (-1 = never set) and whether a wrong one gets corrected.

    Agents read the wording: when it matches the true urgency they are right 85 % of
    the time, otherwise 60 %; a miss is one level off in the direction the wording
    suggests (urgent words: too high, calm words: too low).
    """
    n = len(urgency)
    wording_matches = urgent_wording == (urgency >= 2)
    right = rng.random(n) < np.where(wording_matches, 0.85, 0.60)
    direction = np.where(urgent_wording, 1, -1)
    shifted = urgency + direction
    shifted = np.where((shifted < 0) | (shifted > 3), urgency - direction, shifted)
    priority = np.where(right, urgency, shifted)
    never_set = rng.random(n) < 0.04
    priority = np.where(never_set, -1, priority)
    correction_wanted = (~right) & (~never_set) & (rng.random(n) < 0.45)
    return priority, correction_wanted


def _draw_rounds(rng: np.random.Generator, issue: np.ndarray, channel: np.ndarray,
                 primary_skill: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plan the turns: rounds until the first solve, up to two reopens with 1-2 rounds each.

    Returns ``segment_end`` (n, 3) (turn index of each solve, -1 if the segment does
    not exist), ``n_turns`` (n,) and ``auto_solve`` (n,).
    """
    n = len(issue)
    first = 1 + np.minimum(rng.poisson(_ISSUE_EXTRA_ROUNDS[issue] * ROUNDS_FACTOR[channel]), 6)
    reopen_p = _ISSUE_REOPEN_P[issue] + 0.08 * (primary_skill < -0.3) - 0.03 * (primary_skill > 0.5)
    reopen_1 = rng.random(n) < reopen_p
    reopen_2 = reopen_1 & (rng.random(n) < 0.25)
    second = np.where(reopen_1, 1 + (rng.random(n) < 0.35), 0)
    third = np.where(reopen_2, 1, 0)
    end_1 = first - 1
    end_2 = np.where(reopen_1, end_1 + second, -1)
    end_3 = np.where(reopen_2, end_2 + third, -1)
    n_turns = first + second + third
    auto_solve = (~reopen_1) & (rng.random(n) < 0.20)
    return np.stack([end_1, end_2, end_3], axis=1), n_turns, auto_solve


# --- conversations -----------------------------------------------------------------
_ACTOR = {name: i for i, name in enumerate(contract.ACTORS)}
_KIND = {name: i for i, name in enumerate(contract.EVENT_KINDS)}
_STATUS = {name: i for i, name in enumerate(contract.STATUSES)}
_NONE = -1
# Order of events inside one turn; it only breaks ties between events in the same second.
_SUB_CUSTOMER, _SUB_REOPEN_STATUS, _SUB_NEW_STATUS, _SUB_ROUTING = 0, 1, 2, 3
_SUB_FOLLOW_UP, _SUB_TRANSFER_NOTE, _SUB_GROUP, _SUB_ASSIGNEE = 4, 5, 6, 7
_SUB_PICKUP_STATUS, _SUB_PRIORITY, _SUB_NOTE, _SUB_AGENT, _SUB_AFTER = 8, 9, 10, 11, 12
_SUBS_PER_TURN = 16


class _EventBuffer:
    """Collects event blocks as parallel arrays; values are codes into :func:`_value_vocabulary`.

    ``body`` codes below ``len(_VOCAB)`` are phrase-pool entries; larger codes are the
    ticket's opening message (``len(_VOCAB) + ticket``). ``key`` orders events of one
    ticket that fall in the same second (turn * 16 + position in the turn).
    """

    def __init__(self) -> None:
        self.blocks: list[tuple[np.ndarray, ...]] = []

    def add(self, rows: np.ndarray, t_s, key, actor: str, kind: str, value=0, body=0) -> None:
        """Add one event per ticket in ``rows`` (int array) at ``t_s`` seconds; scalars broadcast."""
        m = len(rows)
        if m == 0:
            return
        self.blocks.append((
            rows.astype(np.int32),
            np.broadcast_to(np.asarray(t_s, dtype=np.float64), (m,)).copy(),
            np.full(m, key, dtype=np.int16),
            np.full(m, _ACTOR[actor], dtype=np.int8),
            np.full(m, _KIND[kind], dtype=np.int8),
            np.broadcast_to(np.asarray(value, dtype=np.int32), (m,)).copy(),
            np.broadcast_to(np.asarray(body, dtype=np.int32), (m,)).copy(),
        ))

    def take_arrays(self) -> tuple[np.ndarray, ...]:
        """Concatenate the blocks (ticket, t_s, key, actor, kind, value, body) and empty the buffer."""
        columns = zip(*self.blocks)
        self.blocks = []
        return tuple(np.concatenate(column) for column in columns)


@dataclass(frozen=True)
class _ValueCodes:
    """Offsets of each field's values in the event ``value`` vocabulary (code 0 = empty)."""

    status: int
    group: int
    agent: int
    priority: int


def _value_vocabulary(staff: _Staff) -> tuple[list[str], _ValueCodes]:
    vocab = [""] + list(contract.STATUSES) + list(GROUPS) + list(staff.ids) + list(contract.PRIORITIES)
    status = 1
    group = status + len(contract.STATUSES)
    agent = group + len(GROUPS)
    priority = agent + len(staff.ids)
    return vocab, _ValueCodes(status, group, agent, priority)


@dataclass
class _State:
    """Mutable per-ticket state carried from turn to turn (arrays of shape (n,))."""

    group: np.ndarray
    agent: np.ndarray  # -1 before the first pickup
    priority: np.ndarray  # -1 = not set
    prev_after: np.ndarray  # status the agent left after the previous turn, -1 before turn 0
    last_reply_s: np.ndarray  # time of the previous agent reply (created_at before turn 0)
    first_reply_s: np.ndarray
    wait_s: np.ndarray  # customer's total wait for agent replies so far
    hops: np.ndarray
    reopens: np.ndarray
    follow_ups: np.ndarray

    @classmethod
    def start(cls, p: "_Profile") -> "_State":
        n = len(p.t0)
        zeros = np.zeros(n, dtype=np.int64)
        return cls(p.initial_group.copy(), np.full(n, -1), p.initial_priority.copy(), np.full(n, _NONE),
                   p.t0.copy(), np.zeros(n), np.zeros(n), zeros.copy(), zeros.copy(), zeros.copy())


@dataclass(frozen=True)
class _Conversation:
    """Per-ticket results of the played conversation (full timeline, before the export cut)."""

    first_reply_s: np.ndarray  # created -> first agent public reply, wall seconds
    customer_wait_s: np.ndarray  # total time the customer waited for agent replies, wall seconds
    n_hops: np.ndarray  # group changes after the routing group
    n_reopens: np.ndarray
    n_turns: np.ndarray
    n_follow_ups: np.ndarray  # customer messages sent while waiting
    final_agent: np.ndarray
    solved_s: np.ndarray  # final solve, seconds since start


def _play_conversations(rng: np.random.Generator, p: _Profile, world: _World,
                        buffer: _EventBuffer) -> _Conversation:
    """Play every ticket's conversation into ``buffer``: one loop step per turn, vectorised over tickets."""
    _, codes = _value_vocabulary(world.staff)
    n = len(p.t0)
    everyone = np.arange(n)
    # Opening: the customer's message (the ticket description), "new" status, routing group.
    buffer.add(everyone, p.t0, _SUB_CUSTOMER, "customer", "message", body=len(_VOCAB) + everyone)
    buffer.add(everyone, p.t0, _SUB_NEW_STATUS, "system", "status", value=codes.status + _STATUS["new"])
    buffer.add(everyone, p.t0, _SUB_ROUTING, "system", "group", value=codes.group + p.initial_group)
    state = _State.start(p)
    for k in range(int(p.n_turns.max())):
        _play_turn(rng, k, np.flatnonzero(k < p.n_turns), p, world, codes, state, buffer)
    solved_s = _finish(rng, p, codes, state.last_reply_s, buffer)
    return _Conversation(state.first_reply_s, state.wait_s, state.hops, state.reopens, p.n_turns,
                         state.follow_ups, state.agent, solved_s)


def _play_turn(rng: np.random.Generator, k: int, rows: np.ndarray, p: _Profile, world: _World,
               codes: _ValueCodes, s: _State, buffer: _EventBuffer) -> None:
    """Turn ``k`` for the tickets ``rows`` that still have one: customer writes, agent answers."""
    m = len(rows)
    u = rng.random((16, m))
    z = rng.standard_normal((3, m))
    key = k * _SUBS_PER_TURN
    channel, language = p.channel[rows], p.language[rows]
    prev_after = s.prev_after[rows]
    on_hold = prev_after == _STATUS["hold"]

    # 1. The customer writes (not while on hold); a reply after a solve reopens the ticket.
    wait_from, tone = _customer_writes(k, rows, p, world, codes, s, buffer, u, z)

    # 2. Who handles the turn: the first pickup, a transfer to another group, a reassignment.
    group, agent = s.group[rows], s.agent[rows]
    hop, new_group, new_agent, reassign = _handler(rng, k, rows, p, world.staff, s, u)
    pickup = (k == 0) | hop | reassign

    # 3. Reply delay in business hours; a transfer first costs part of the old queue's delay.
    staff = world.staff
    priority = s.priority[rows]
    base_h = (AGENT_REPLY_MEDIAN_MINUTES[channel] / 60.0 * np.exp(0.75 * z[2])
              * (1.0 if k == 0 else 0.8) * np.where(on_hold, 6.0, 1.0)
              * np.where(priority >= 0, PRIORITY_SLOWNESS[np.maximum(priority, 0)], UNSET_PRIORITY_SLOWNESS))
    old_slowness = np.where(agent >= 0, staff.slowness[np.maximum(agent, 0)], 1.0)
    old_h = (base_h * GROUP_SLOWNESS[group] * old_slowness * world.load_at(group, wait_from)
             * (0.2 + 0.4 * u[4]))
    new_h = (base_h * GROUP_SLOWNESS[new_group] * staff.slowness[new_agent]
             * world.load_at(new_group, wait_from))
    clock = world.agent_clock
    b_transfer = clock.forward(wait_from) + np.where(hop, old_h, 0.0)
    reply_at = np.maximum(clock.inverse(b_transfer + new_h), wait_from + 30.0)
    pickup_at = np.minimum(clock.inverse(b_transfer + (0.5 + 0.45 * u[5]) * new_h), reply_at)
    transfer_at = np.minimum(clock.inverse(b_transfer), pickup_at)

    # 4. Handover events: transfer note and group change, assignee, first open status and priority.
    hopped = np.flatnonzero(hop)
    noted = hopped[u[6, hopped] < 0.5]
    buffer.add(rows[noted], transfer_at[noted], key + _SUB_TRANSFER_NOTE, "agent", "note",
               body=_POOLS["note"].pick(language[noted], 1, u[7, noted]))
    buffer.add(rows[hopped], transfer_at[hopped], key + _SUB_GROUP, "agent", "group",
               value=codes.group + new_group[hopped])
    picked = np.flatnonzero(pickup)
    buffer.add(rows[picked], pickup_at[picked], key + _SUB_ASSIGNEE, "agent", "assignee",
               value=codes.agent + new_agent[picked])
    if k == 0:
        buffer.add(rows, pickup_at, key + _SUB_PICKUP_STATUS, "agent", "status",
                   value=codes.status + _STATUS["open"])
        set_now = np.flatnonzero(priority >= 0)
        buffer.add(rows[set_now], pickup_at[set_now], key + _SUB_PRIORITY, "agent", "priority",
                   value=codes.priority + priority[set_now])
    corrected = np.flatnonzero(p.correction_turn[rows] == k)
    buffer.add(rows[corrected], pickup_at[corrected], key + _SUB_PRIORITY, "agent", "priority",
               value=codes.priority + p.urgency[rows[corrected]])
    s.priority[rows[corrected]] = p.urgency[rows[corrected]]
    s.hops[rows] += hop
    s.group[rows], s.agent[rows] = new_group, new_agent

    # 5. While the customer waits: internal notes, and follow-ups once the wait gets long.
    note_p = 0.10 + 0.10 * ((new_group == _TECHNICAL) | (new_group == _ESCALATIONS))
    noted = np.flatnonzero(u[8] < note_p)
    buffer.add(rows[noted], pickup_at[noted] + u[9, noted] * (reply_at[noted] - pickup_at[noted]),
               key + _SUB_NOTE, "agent", "note", body=_POOLS["note"].pick(language[noted], 0, u[10, noted]))
    waited_s = reply_at - wait_from
    follow_after_s = FOLLOW_UP_AFTER_MINUTES[channel] * MINUTE_S
    excess = waited_s / follow_after_s
    # The longer past the channel's patience threshold, the likelier a follow-up.
    follow_p = np.clip(0.55 * (1.0 - 1.0 / np.maximum(excess, 1.0)) * (1.0 + 0.25 * p.temperament[rows]),
                       0.0, 0.8)
    nag = np.flatnonzero((excess > 1.0) & (u[11] < follow_p))
    follow_at = (wait_from[nag] + follow_after_s[nag]
                 + 0.9 * u[12, nag] * (waited_s[nag] - follow_after_s[nag]))
    buffer.add(rows[nag], follow_at, key + _SUB_FOLLOW_UP, "customer", "message",
               body=_POOLS["follow_up"].pick(language[nag], np.minimum(tone[nag] + 1, _ANGRY), u[13, nag]))
    s.follow_ups[rows[nag]] += 1

    # 6. The agent answers and leaves a status (events only when the status changes).
    after = _after_status(k, rows, p, new_group, u[14])
    upset = (tone >= _IMPATIENT) | (excess > 1.0)
    buffer.add(rows, reply_at, key + _SUB_AGENT, "agent", "message",
               body=_agent_body(k, after, language, upset, u[15]))
    changed = np.flatnonzero(after != np.where(on_hold, _STATUS["hold"], _STATUS["open"]))
    buffer.add(rows[changed], reply_at[changed], key + _SUB_AFTER, "agent", "status",
               value=codes.status + after[changed])
    if k == 0:
        s.first_reply_s[rows] = reply_at - p.t0[rows]
    s.wait_s[rows] += waited_s
    s.prev_after[rows] = after
    s.last_reply_s[rows] = reply_at


def _customer_writes(k: int, rows: np.ndarray, p: _Profile, world: _World, codes: _ValueCodes, s: _State,
                     buffer: _EventBuffer, u: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The customer's side of turn ``k``: when the wait for the agent starts (s) and the tone (0-2).

    Turn 0 starts at creation with the opening message. Later turns start when the
    customer answers (customer-active time after the last reply), reopens a solved
    ticket (hours to ~4 days later, before the automatic close), or, on hold, when
    the agent last wrote. The tone grows with the wait so far, reopens and turns.
    """
    if k == 0:
        return p.t0[rows].copy(), p.opening_tone[rows].copy()
    key = k * _SUBS_PER_TURN
    prev_after, last_reply = s.prev_after[rows], s.last_reply_s[rows]
    reopen = prev_after == _STATUS["solved"]
    on_hold = prev_after == _STATUS["hold"]
    channel, language, temperament = p.channel[rows], p.language[rows], p.temperament[rows]
    gap_h = (CUSTOMER_REPLY_MEDIAN_MINUTES[channel] / 60.0 * np.exp(z[0])
             * np.where(temperament > 1.0, 0.7, 1.0))  # short-tempered customers answer faster
    reply_at = world.customer_clock.later(last_reply, gap_h)
    reopen_at = last_reply + np.clip(20.0 * np.exp(0.9 * z[0]), 0.3, 90.0) * HOUR_S
    wait_from = np.where(reopen, reopen_at, np.where(on_hold, last_reply, reply_at))
    s.reopens[rows] += reopen
    mood = (0.6 * temperament + 0.5 * np.log1p(s.wait_s[rows] / HOUR_S) + 0.8 * s.reopens[rows] + 0.12 * k
            + 0.5 * z[1])
    tone = np.digitize(mood, [1.5, 2.4])
    writes = np.flatnonzero(~on_hold)
    body = np.where(reopen[writes], _POOLS["reopen"].pick(language[writes], tone[writes], u[0, writes]),
                    _POOLS["reply"].pick(language[writes], tone[writes], u[0, writes]))
    buffer.add(rows[writes], wait_from[writes], key + _SUB_CUSTOMER, "customer", "message", body=body)
    reopened = np.flatnonzero((prev_after == _STATUS["pending"]) | reopen)
    buffer.add(rows[reopened], wait_from[reopened], key + _SUB_REOPEN_STATUS, "system", "status",
               value=codes.status + _STATUS["open"])
    return wait_from, tone


def _handler(rng: np.random.Generator, k: int, rows: np.ndarray, p: _Profile, staff: _Staff, s: _State,
             u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Who answers turn ``k``: (hop, new_group, new_agent, reassign), each shape (len(rows),).

    Turn 0: misrouted tickets are transferred to their home group; the home group's
    agent picks the ticket up. Later turns: transfers (often for "bouncy" tickets and
    issues that escalate), and occasional reassignments inside the group (more after
    a reopen, when the first agent may be busy).
    """
    group, agent = s.group[rows], s.agent[rows]
    if k == 0:
        return (p.misrouted[rows].copy(), p.home_group[rows].copy(), p.primary_agent[rows].copy(),
                np.zeros(len(rows), bool))
    hop_p = np.where(p.bouncy[rows], 0.6, 0.03 + 0.05 * _ISSUE_ESCALATES[p.issue[rows]])
    hop = (u[1] < hop_p) & (s.hops[rows] < 4)
    new_group, new_agent = group.copy(), agent.copy()
    hopped = np.flatnonzero(hop)
    new_group[hopped] = _hop_target(rng, group[hopped], p.home_group[rows[hopped]], u[2, hopped])
    new_agent[hopped] = staff.pick(rng, new_group[hopped])
    reopened = s.prev_after[rows] == _STATUS["solved"]
    maybe = np.flatnonzero(~hop & (u[3] < np.where(reopened, 0.3, 0.05)))
    candidate = staff.pick(rng, group[maybe])
    moved = maybe[candidate != agent[maybe]]
    new_agent[moved] = candidate[candidate != agent[maybe]]
    reassign = np.zeros(len(rows), bool)
    reassign[moved] = True
    return hop, new_group, new_agent, reassign


def _hop_target(rng: np.random.Generator, group: np.ndarray, home: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Where a transfer goes: from home, to escalations (50 %) or elsewhere; off home, back (60 %)."""
    other = _other_group(rng, group)
    to_escalations = np.where(group == _ESCALATIONS, other, _ESCALATIONS)
    return np.where(group == home, np.where(u < 0.5, to_escalations, other),
                    np.where(u < 0.6, home, np.where(u < 0.8, to_escalations, other)))


def _after_status(k: int, rows: np.ndarray, p: _Profile, group: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Status the agent leaves after turn ``k``: solved at a segment end, else hold/open/pending."""
    segment_end = (p.segment_end[rows] == k).any(axis=1)
    hold_p = GROUP_HOLD_P[group]
    during = np.where(u < hold_p, _STATUS["hold"],
                      np.where(u < hold_p + 0.18, _STATUS["open"], _STATUS["pending"]))
    after = np.where(segment_end, _STATUS["solved"], during)
    # A silent customer: the last reply asks something nobody answers; the system solves later.
    silent = (k == p.n_turns[rows] - 1) & p.auto_solve[rows]
    return np.where(silent, _STATUS["pending"], after)


def _agent_body(k: int, after: np.ndarray, language: np.ndarray, upset: np.ndarray,
                u: np.ndarray) -> np.ndarray:
    """Body codes for the agent replies of turn ``k``; the apologetic register when the customer is upset."""
    register = upset.astype(np.int64)
    body = _POOLS["agent_first" if k == 0 else "agent_follow_up"].pick(language, register, u)
    body = np.where(after == _STATUS["hold"], _POOLS["agent_hold"].pick(language, register, u), body)
    return np.where(after == _STATUS["solved"], _POOLS["agent_solve"].pick(language, register, u), body)


def _finish(rng: np.random.Generator, p: _Profile, codes: _ValueCodes, last_reply_s: np.ndarray,
            buffer: _EventBuffer) -> np.ndarray:
    """Automatic solve of silent pending tickets (after 72 h) and closing 4 days after the solve.

    Returns the final solve time per ticket (seconds since start). Automations run
    hourly, hence a jitter of up to an hour.
    """
    n = len(p.t0)
    key = int(p.n_turns.max()) * _SUBS_PER_TURN
    jitter = rng.random((2, n)) * HOUR_S
    solved = np.where(p.auto_solve, last_reply_s + 72 * HOUR_S + jitter[0], last_reply_s)
    silent = np.flatnonzero(p.auto_solve)
    buffer.add(silent, solved[silent], key, "system", "status", value=codes.status + _STATUS["solved"])
    buffer.add(np.arange(n), solved + 96 * HOUR_S + jitter[1], key + 1, "system", "status",
               value=codes.status + _STATUS["closed"])
    return solved


# --- the survey ----------------------------------------------------------------------
@dataclass(frozen=True)
class _Rating:
    """Per ticket: the bad probability used, the survey timeline (seconds since start, NaN = never)."""

    p_bad: np.ndarray
    unhappy: np.ndarray
    offered_s: np.ndarray
    rated_s: np.ndarray


def _bad_logit(p: _Profile, c: _Conversation, staff: _Staff, noise: np.ndarray) -> np.ndarray:
    """Log-odds of a bad rating before customer history; shape (n,)."""
    priority_too_low = (p.initial_priority >= 0) & (p.initial_priority < p.urgency)
    return (
        -2.7
        + 0.45 * np.log1p(c.first_reply_s / HOUR_S)
        + 0.30 * np.log1p(c.customer_wait_s / HOUR_S)
        + 0.12 * (c.n_turns - 1)
        + 0.35 * c.n_hops
        + 0.75 * c.n_reopens
        + 0.20 * c.n_follow_ups
        + 0.40 * p.temperament
        + 0.30 * (p.opening_tone == _ANGRY)
        + CHANNEL_BAD_LOGIT[p.channel]
        + _ISSUE_BAD_LOGIT[p.issue]
        - 0.45 * staff.skill[c.final_agent]
        + 0.35 * priority_too_low
        + 0.10 * p.auto_solve
        + noise
    )


def _with_history(base_logit: np.ndarray, requester: np.ndarray, t0: np.ndarray,
                  u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Add the customer's earlier unhappy tickets (+0.5 log-odds each, up to 3) and draw unhappiness.

    Loops over a customer's k-th ticket (k = 0, 1, ...), vectorised over customers,
    so each draw sees the outcome of that customer's earlier tickets.
    """
    n = len(base_logit)
    order = np.lexsort((t0, requester))
    first_of_requester = np.r_[True, requester[order][1:] != requester[order][:-1]]
    group_start = np.maximum.accumulate(np.where(first_of_requester, np.arange(n), 0))
    nth = np.empty(n, dtype=np.int64)
    nth[order] = np.arange(n) - group_start
    by_nth = np.argsort(nth, kind="stable")
    bounds = np.searchsorted(nth[by_nth], np.arange(nth.max() + 2))
    earlier_unhappy = np.zeros(requester.max() + 1, dtype=np.int64)
    p_bad = np.empty(n)
    unhappy = np.empty(n, dtype=bool)
    for k in range(nth.max() + 1):
        rows = by_nth[bounds[k]: bounds[k + 1]]
        who = requester[rows]
        p_bad[rows] = 1.0 / (1.0 + np.exp(-(base_logit[rows] + 0.5 * np.minimum(earlier_unhappy[who], 3))))
        unhappy[rows] = u[rows] < p_bad[rows]
        earlier_unhappy[who] += unhappy[rows]
    return p_bad, unhappy


def _rate(rng: np.random.Generator, p: _Profile, c: _Conversation, requester: np.ndarray,
          staff: _Staff) -> _Rating:
    """Offer the survey a day after the final solve; unhappy customers answer less often."""
    n = len(p.t0)
    base = _bad_logit(p, c, staff, rng.normal(0.0, 0.5, n))
    p_bad, unhappy = _with_history(base, requester, p.t0, rng.random(n))
    offered = (SURVEY_ANSWER_P[p.channel] > 0) & (rng.random(n) > 0.04)
    offered_s = np.where(offered, c.solved_s + 24 * HOUR_S + rng.random(n) * HOUR_S, np.nan)
    answer_p = (SURVEY_ANSWER_P[p.channel] * np.where(unhappy, 0.55, 1.0)
                * np.where(p.language == _KO, 0.85, 1.0))
    answered = offered & (rng.random(n) < answer_p)
    delay_s = np.minimum(np.exp(np.log(5.0) + 1.3 * rng.standard_normal(n)), 20 * 24.0) * HOUR_S
    rated_s = np.where(answered, offered_s + delay_s, np.nan)
    return _Rating(p_bad, unhappy, offered_s, rated_s)


# --- assembling the export ---------------------------------------------------------------
def _to_utc(start: pd.Timestamp, t_s: np.ndarray) -> pd.DatetimeIndex:
    """Seconds since ``start`` (float, NaN allowed) -> UTC timestamps floored to the second (us unit)."""
    whole = np.floor(t_s)
    nat = np.isnan(whole)
    epoch_s = start.floor("s").value // 10**9 + np.where(nat, 0, whole).astype(np.int64)
    stamps = epoch_s.astype("datetime64[s]").astype("datetime64[us]")
    stamps[nat] = np.datetime64("NaT")
    return pd.DatetimeIndex(stamps).tz_localize("UTC")


def _strings(values: pa.Array | np.ndarray | list) -> pd.Series:
    """A pandas default-string Series backed by Arrow."""
    return pd.Series(values if isinstance(values, pa.Array) else pa.array(values, type=pa.string()),
                     dtype="str")


@dataclass(frozen=True)
class _ExportState:
    """Per ticket, value codes of status/group/assignee/priority as of export (0 = empty)."""

    status: np.ndarray
    group: np.ndarray
    assignee: np.ndarray
    priority: np.ndarray
    value_vocab: pa.Array


def _assemble_events(buffer: _EventBuffer, openings: pa.Array, world: _World, start: pd.Timestamp,
                     export_s: float) -> tuple[pd.DataFrame, _ExportState]:
    """Cut events at the export, sort by (ticket, second, turn order), decode to strings."""
    ticket, t_s, key, actor, kind, value, body = buffer.take_arrays()
    whole_s = np.floor(t_s)
    keep = np.flatnonzero(whole_s <= export_s)
    order = keep[_event_order(ticket[keep], whole_s[keep].astype(np.int64), key[keep])]
    del t_s, keep
    ticket, whole_s, actor, kind, value, body = (
        a[order] for a in (ticket, whole_s, actor, kind, value, body))
    del order
    value_vocab_list, _ = _value_vocabulary(world.staff)
    value_vocab = pa.array(value_vocab_list, type=pa.string())
    n_tickets = len(openings)
    state = _ExportState(
        *(_last_value(ticket, kind, value, _KIND[name], n_tickets) for name in ("status", "group",
                                                                                  "assignee", "priority")),
        value_vocab=value_vocab,
    )
    ids = _ticket_ids(n_tickets)
    body_vocab = pa.concat_arrays([_VOCAB_ARROW, openings])
    events = pd.DataFrame(
        {
            "ticket_id": _strings(ids.take(pa.array(ticket))),
            "at": _to_utc(start, whole_s),
            "actor": _strings(pa.array(contract.ACTORS).take(pa.array(actor))),
            "kind": _strings(pa.array(contract.EVENT_KINDS).take(pa.array(kind))),
            "value": _strings(value_vocab.take(pa.array(value))),
            "body": _strings(body_vocab.take(pa.array(body))),
        }
    )
    return events, state


def _event_order(ticket: np.ndarray, whole_s: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Permutation sorting events by (ticket, second, key): one int64 sort key when the bits fit."""
    bits_key = 8
    bits_s = max(int(whole_s.max(initial=0)).bit_length(), 1)
    bits_ticket = max(int(ticket.max(initial=0)).bit_length(), 1)
    if bits_key + bits_s + bits_ticket > 63 or int(key.max(initial=0)) >= 1 << bits_key:
        return np.lexsort((key, whole_s, ticket))
    packed = (ticket.astype(np.int64) << (bits_s + bits_key)) | (whole_s << bits_key) | key.astype(np.int64)
    return np.argsort(packed, kind="stable")


def _last_value(ticket: np.ndarray, kind: np.ndarray, value: np.ndarray, kind_code: int,
                n: int) -> np.ndarray:
    """Value code of the last event of ``kind_code`` per ticket (events sorted); 0 where none."""
    rows = np.flatnonzero(kind == kind_code)
    tk = ticket[rows]
    last = np.r_[tk[1:] != tk[:-1], True] if len(tk) else np.zeros(0, bool)
    out = np.zeros(n, dtype=np.int64)
    out[tk[last]] = value[rows[last]]
    return out


def _ticket_ids(n: int) -> pa.Array:
    """Zendesk-like numeric ids "100001", ... all of one width, so text order = numeric order."""
    width = 6 if n <= 899_999 else len(str(n)) + 1
    base = 10 ** (width - 1)
    return pa.array(np.arange(base + 1, base + 1 + n, dtype=np.int64)).cast(pa.string())


def _phrases(codes: np.ndarray) -> pa.Array:
    """Phrase-pool codes -> Arrow strings."""
    return _VOCAB_ARROW.take(pa.array(codes))


def _spaces(present: np.ndarray, separator: str = " ") -> pa.Array:
    """``separator`` where ``present``, else the empty string (Arrow strings)."""
    return pa.array(["", separator], type=pa.string()).take(pa.array(present.astype(np.int8)))


def _opening_messages(rng: np.random.Generator, p: _Profile) -> pa.Array:
    """The customer's first message per ticket (Arrow strings, length n).

    Greeting + issue sentence + urgent phrase (when the wording is urgent) + tone
    phrase; angry English openings are sometimes written in capitals; about two in
    five puts the greeting on its own line.
    """
    n = len(p.t0)
    u = rng.random((6, n))
    urgent = np.where(p.urgent_wording, _POOLS["urgent"].pick(p.language, 0, u[2]), 0)
    tone = _POOLS["opening_tone"].pick(p.language, p.opening_tone, u[3])
    text = pc.binary_join_element_wise(
        _phrases(_POOLS["greeting"].pick(p.language, 0, u[0])),
        pa.array([" ", "\n"]).take(pa.array((u[4] < 0.4).astype(np.int8))),
        _phrases(_POOLS["issue"].pick(p.language, p.issue, u[1])),
        _spaces(_VOCAB_CHARS[urgent] > 0), _phrases(urgent),
        _spaces(_VOCAB_CHARS[tone] > 0), _phrases(tone),
        "",
    )
    shout = (p.opening_tone == _ANGRY) & (p.language == _EN) & (u[5] < 0.35)
    return pc.if_else(pa.array(shout), pc.utf8_upper(text), text)


def _subjects(rng: np.random.Generator, p: _Profile) -> pa.Array:
    """Ticket subject per ticket (Arrow strings): issue subject, urgent prefix, angry "!!!"."""
    n = len(p.t0)
    u = rng.random((3, n))
    prefix = pa.array(["", "URGENT: ", "[긴급] "]).take(
        pa.array(np.where(p.urgent_wording & (u[1] < 0.6), 1 + p.language, 0)))
    suffix = _spaces((p.opening_tone == _ANGRY) & (u[2] < 0.5), "!!!")
    return pc.binary_join_element_wise(prefix, _phrases(_POOLS["subject"].pick(p.language, p.issue, u[0])),
                                       suffix, "")


def _assemble_tickets(rng: np.random.Generator, p: _Profile, customers: _Customers, state: _ExportState,
                      rating: _Rating, start: pd.Timestamp, export_s: float) -> pd.DataFrame:
    """One row per ticket in creation order, with the field values as of the export."""
    n = len(p.t0)
    rated = rating.rated_s <= export_s
    offered = rating.offered_s <= export_s
    satisfaction = np.where(rated, np.where(rating.unhappy, "bad", "good"),
                            np.where(offered, "offered", "unoffered"))
    vocab = state.value_vocab
    return pd.DataFrame(
        {
            "ticket_id": _strings(_ticket_ids(n)),
            "created_at": _to_utc(start, p.t0),
            "channel": _strings(np.asarray(CHANNELS, dtype=object)[p.channel]),
            "status": _strings(vocab.take(pa.array(state.status))),
            "priority": _strings(vocab.take(pa.array(state.priority))),
            "requester_id": _strings(pa.array(5_000_001 + customers.requester).cast(pa.string())),
            "group": _strings(vocab.take(pa.array(state.group))),
            "assignee": _strings(vocab.take(pa.array(state.assignee))),
            "subject": _strings(_subjects(rng, p)),
            "satisfaction": _strings(satisfaction.astype(object)),
            "satisfaction_at": _to_utc(start, np.where(rated, rating.rated_s, np.nan)),
        }
    )
