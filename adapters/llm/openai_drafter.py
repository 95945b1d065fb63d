"""A :class:`bot.drafting.Drafter` over OpenAI's Chat Completions API (the official client).

Each call sends the conversation from :mod:`bot.drafting` with a strict ``json_schema``
response format. An answer that does not parse or validate is answered with the problem
and asked for once more; a second invalid answer raises :class:`DraftFailed` naming it.
Rate limits (429, honouring ``Retry-After``), server errors and timeouts are retried by
the client itself, ``max_retries`` times with backoff; ``timeout`` bounds each attempt.
Any server speaking the API works (vLLM, llama.cpp, Ollama): point ``base_url`` at it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema

from bot.drafting import (
    JUDGE_SCHEMA,
    SUMMARY_SCHEMA,
    Aid,
    Draft,
    Drafter,
    DraftFailed,
    Judgement,
    Message,
    PriceTable,
    Revision,
    Usage,
    correction_message,
    draft_messages,
    judge_messages,
    parse_aid,
    parse_content,
    parse_judgement,
    schema_for,
    summary_messages,
)
from bot.errors import ConfigError, InvalidInput

T = TypeVar("T")


class OpenAIDrafter:
    """Drafts, judges and summarizes with ``model`` through an ``AsyncOpenAI`` client.

    ``timeout`` (seconds) bounds each HTTP attempt; ``max_retries`` is how often the
    client retries a 408/409/429/5xx answer, a timeout or a lost connection. The model
    must be in ``prices`` (ConfigError otherwise). :meth:`aclose` closes the client.
    """

    def __init__(
        self,
        *,
        client: openai.AsyncOpenAI,
        model: str,
        prices: PriceTable,
        timeout: float = 60,
        max_retries: int = 2,
    ) -> None:
        if timeout <= 0:
            raise ConfigError(f"the model timeout must be positive, not {timeout}")
        prices.price(model)  # fail at start, not at the first draft
        self.model = model
        self.prices = prices
        self.timeout = timeout
        self.max_retries = max_retries
        self._client = client.with_options(timeout=timeout, max_retries=max_retries)

    async def aclose(self) -> None:
        await self._client.close()

    async def draft(
        self,
        *,
        kind: str,
        instructions: str,
        context: Mapping[str, Any] | str,
        feedback: Sequence[Revision] = (),
    ) -> Draft:
        schema = schema_for(kind)  # InvalidInput for an unknown kind, before any call
        prompt = draft_messages(
            kind=kind, instructions=instructions, context=context, feedback=feedback
        )
        content, usage, attempts = await self._ask(
            prompt,
            name=f"{kind}_draft",
            schema=schema,
            parse=lambda text: parse_content(kind, text),
        )
        return Draft(
            content=content, prompt=prompt, usage=usage, attempts=attempts, model=self.model
        )

    async def judge(self, *, content: Mapping[str, Any], kind: str, rubric: str) -> Judgement:
        (score, rationale), usage, _ = await self._ask(
            judge_messages(content=content, kind=kind, rubric=rubric),
            name="judgement",
            schema=JUDGE_SCHEMA,
            parse=parse_judgement,
        )
        return Judgement(score=score, rationale=rationale, usage=usage)

    async def summarize(self, *, content: Mapping[str, Any], kind: str) -> Aid:
        (summary, spots), usage, _ = await self._ask(
            summary_messages(content=content, kind=kind),
            name="review_aid",
            schema=SUMMARY_SCHEMA,
            parse=lambda text: parse_aid(text, kind=kind),
        )
        return Aid(summary=summary, risky_spots=spots, usage=usage)

    # ------------------------------------------------------------------ one call

    async def _ask(
        self,
        messages: list[Message],
        *,
        name: str,
        schema: dict[str, Any],
        parse: Callable[[str], T],
    ) -> tuple[T, Usage, int]:
        """Ask, validate with ``parse``; on an invalid answer say why and ask once more."""
        conversation = list(messages)
        tokens_in = tokens_out = 0
        problem = ""
        for attempt in (1, 2):
            completion = await self._complete(
                conversation, name=name, schema=schema, spent=(tokens_in, tokens_out)
            )
            if completion.usage is not None:
                tokens_in += completion.usage.prompt_tokens
                tokens_out += completion.usage.completion_tokens
            text, problem = self._answer(completion, spent=(tokens_in, tokens_out))
            if not problem:
                try:
                    return parse(text), self._usage(tokens_in, tokens_out), attempt
                except InvalidInput as exc:
                    problem = exc.message
            conversation += [{"role": "assistant", "content": text}, correction_message(problem)]
        raise DraftFailed(
            f"the model's answer was invalid twice; {problem}",
            usage=self._usage(tokens_in, tokens_out),
        )

    async def _complete(
        self,
        messages: list[Message],
        *,
        name: str,
        schema: dict[str, Any],
        spent: tuple[int, int],
    ) -> ChatCompletion:
        response_format: ResponseFormatJSONSchema = {
            "type": "json_schema",
            "json_schema": {"name": name, "strict": True, "schema": schema},
        }
        tries = self.max_retries + 1
        try:
            return await self._client.chat.completions.create(
                model=self.model,
                messages=cast(list[ChatCompletionMessageParam], messages),
                response_format=response_format,
            )
        except openai.APITimeoutError:
            message = f"model did not answer within {self.timeout:g} s ({_times(tries)})"
            retryable = True
        except openai.APIConnectionError as exc:
            message = f"could not reach the model at {self._client.base_url}: {exc}"
            retryable = True
        except openai.APIStatusError as exc:
            status = exc.status_code
            retryable = status in (408, 409, 429) or status >= 500
            after = f" ({_times(tries)})" if retryable else ""
            message = f"the model API answered {status}{after}: {_error_message(exc)}"
        raise DraftFailed(message, usage=self._usage(*spent), retryable=retryable)

    def _answer(self, completion: ChatCompletion, *, spent: tuple[int, int]) -> tuple[str, str]:
        """The answer's text, and what is wrong with it ("" when nothing is yet)."""
        if not completion.choices:
            return "", "the answer had no choices"
        choice = completion.choices[0]
        if choice.message.refusal:
            raise DraftFailed(
                f"the model refused: {choice.message.refusal}", usage=self._usage(*spent)
            )
        text = choice.message.content or ""
        if choice.finish_reason == "length":
            return text, "the answer was cut off at the token limit; answer more briefly"
        if choice.finish_reason == "content_filter":
            raise DraftFailed(
                "the model's answer was withheld by its content filter", usage=self._usage(*spent)
            )
        if not text.strip():
            return text, "the answer was empty"
        return text, ""

    def _usage(self, tokens_in: int, tokens_out: int) -> Usage:
        return self.prices.usage(self.model, tokens_in, tokens_out)


if TYPE_CHECKING:  # mypy checks that OpenAIDrafter meets the Protocol
    _: type[Drafter] = OpenAIDrafter


def openai_drafter(
    *,
    api_key: str,
    base_url: str | None = None,
    model: str,
    prices: PriceTable,
    timeout: float = 60,
    max_retries: int = 2,
) -> OpenAIDrafter:
    """An :class:`OpenAIDrafter` with its own client; ``base_url`` (e.g.
    ``http://127.0.0.1:8080/v1``) for a local server, which may need no real key."""
    if not api_key and not base_url:
        raise ConfigError("an OpenAI API key is required (or a base URL of a local server)")
    client = openai.AsyncOpenAI(
        api_key=api_key or "no-key",
        base_url=base_url or None,
        timeout=timeout,
        max_retries=max_retries,
    )
    return OpenAIDrafter(
        client=client, model=model, prices=prices, timeout=timeout, max_retries=max_retries
    )


def _times(tries: int) -> str:
    return "1 try" if tries == 1 else f"{tries} tries"


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        return str(body["message"])
    return exc.message
